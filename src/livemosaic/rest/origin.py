"""Where a request came from and how it reached us: scheme, public host, client address.

``X-Forwarded-Proto``, ``X-Forwarded-Host`` and ``X-Forwarded-For`` are believed only when
the connecting peer is one of ``settings.trusted_proxies``; anyone else could send them to
pass for HTTPS or for another address. A request is *local* when the host the client
addressed and the socket it reached are both loopback (127.0.0.0/8, ::1, localhost): only
then may passwords and tokens travel over plain HTTP (unless ``allow_http_credentials``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import Scope

from livemosaic.settings import Settings

WEB_SCHEMES = {"ws": "http", "wss": "https"}
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (IPv4 127.0.0.0/8, IPv6 ::1)."""
    name = host.strip().strip("[]").lower()
    if not name:
        return False
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def _hostname(netloc: str) -> str:
    """The host part of ``host[:port]`` or ``[v6]:port``."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    if netloc.count(":") == 1:
        return netloc.split(":")[0]
    return netloc


@dataclass(frozen=True, slots=True)
class Origin:
    """How the client sees this request: scheme, ``host[:port]`` and the client's address."""

    scheme: str
    netloc: str
    client_ip: str
    server_host: str

    @property
    def secure(self) -> bool:
        """True when the client spoke HTTPS (directly or to a trusted proxy)."""
        return self.scheme == "https"

    @property
    def local(self) -> bool:
        """True when the addressed host and the socket reached are both loopback."""
        server_ok = not self.server_host or is_loopback(self.server_host)
        return server_ok and is_loopback(_hostname(self.netloc))

    @property
    def base(self) -> str:
        """``scheme://host[:port]`` for absolute URLs."""
        return f"{self.scheme}://{self.netloc}"


def request_origin(scope: Scope, settings: Settings) -> Origin:
    """The :class:`Origin` of a request, honouring forwarded headers from trusted proxies."""
    headers = Headers(scope=scope)
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    server = scope.get("server")
    server_host = str(server[0]) if server and server[1] is not None else ""
    scheme = str(scope.get("scheme", "http")).lower()
    scheme = WEB_SCHEMES.get(scheme, scheme)  # a WebSocket handshake is an HTTP(S) request
    netloc = headers.get("host") or (f"{server[0]}:{server[1]}" if server else "")
    client_ip = peer
    if peer and peer in settings.trusted_proxies:
        proto = _first(headers.get("x-forwarded-proto")).lower()
        if proto in ("http", "https"):
            scheme = proto
        forwarded_host = _first(headers.get("x-forwarded-host"))
        if forwarded_host:
            netloc = forwarded_host
        chain = [a.strip() for a in (headers.get("x-forwarded-for") or "").split(",") if a.strip()]
        # the nearest address that is not one of our proxies is the client
        for address in reversed(chain):
            if address not in settings.trusted_proxies:
                client_ip = address
                break
    return Origin(scheme=scheme, netloc=netloc, client_ip=client_ip, server_host=server_host)


__all__ = ["Origin", "is_loopback", "request_origin"]
