"""Users, roles, password hashes and signed tokens (ArcGIS-style token security).

Passwords are hashed with scrypt (salted, memory-hard) from the standard library. Tokens are
signed, not stored: ``lm1.<payload>.<signature>`` where the payload (base64url JSON) carries
the user, role, expiry, an optional referer/IP binding and the user's token epoch; the
signature is HMAC-SHA256 with the server secret. Changing a password or role bumps the epoch,
which revokes every token issued before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Role = Literal["user", "publisher", "administrator"]
ROLES: tuple[Role, ...] = ("user", "publisher", "administrator")
RANK: dict[str, int] = {"anonymous": 0, "user": 1, "publisher": 2, "administrator": 3}

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1


@dataclass(frozen=True, slots=True)
class User:
    """A user with one role; ``token_epoch`` invalidates older tokens when bumped."""

    username: str
    role: Role
    password_hash: str
    token_epoch: int = 0
    disabled: bool = False
    created: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user and role, or anonymous."""

    username: str | None
    role: str  # "anonymous" or a Role

    @property
    def is_anonymous(self) -> bool:
        """True without a valid token."""
        return self.username is None

    def at_least(self, role: str) -> bool:
        """True when this principal's role ranks at or above ``role``."""
        return RANK.get(self.role, 0) >= RANK[role]


ANONYMOUS = Principal(None, "anonymous")


def hash_password(password: str) -> str:
    """A salted scrypt hash in the form ``scrypt$N$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a hash made by :func:`hash_password` (constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says."""

    username: str
    role: str
    expires: int  # epoch ms
    client: Literal["referer", "ip", "none"]
    bound_to: str  # referer value or IP address ("" when client is none)
    epoch: int


class InvalidToken(Exception):
    """A token is malformed, forged, expired or bound elsewhere."""


class TokenSigner:
    """Issues and verifies HMAC-signed tokens with the server secret."""

    PREFIX = "lm1"

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, f"{self.PREFIX}.{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def issue(self, claims: TokenClaims) -> str:
        """A token string carrying ``claims`` (URL-safe characters only)."""
        body = {
            "u": claims.username,
            "r": claims.role,
            "x": claims.expires,
            "c": claims.client,
            "b": claims.bound_to,
            "e": claims.epoch,
            "n": secrets.token_hex(4),
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{self.PREFIX}.{payload}.{self._sign(payload)}"

    def verify(self, token: str, now: int) -> TokenClaims:
        """The claims of a genuine, unexpired token (InvalidToken otherwise)."""
        parts = token.strip().split(".")
        if len(parts) != 3 or parts[0] != self.PREFIX:
            raise InvalidToken("malformed token")
        if not hmac.compare_digest(self._sign(parts[1]), parts[2]):
            raise InvalidToken("bad signature")
        try:
            body = json.loads(_unb64(parts[1]))
            claims = TokenClaims(
                username=str(body["u"]),
                role=str(body["r"]),
                expires=int(body["x"]),
                client=body["c"],
                bound_to=str(body["b"]),
                epoch=int(body["e"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidToken("malformed payload") from exc
        if claims.expires <= now:
            raise InvalidToken("expired")
        return claims


DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
BARE_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class RefererURL:
    """A referer reduced to what binding compares: origin (scheme, host, port) and path."""

    scheme: str
    host: str
    port: int | None
    path: str  # without a trailing slash; "" for the site root

    @property
    def origin(self) -> tuple[str, str, int | None]:
        """(scheme, host, port) with the scheme's default port filled in."""
        return (self.scheme, self.host, self.port)


def parse_referer(value: str) -> RefererURL | None:
    """The origin and path of an absolute ``scheme://host[:port]/path`` (None otherwise).

    User info (``user@``) is not part of the host: ``https://good.org@evil.net/`` is evil.net.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if not scheme or not host:
        return None
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    return RefererURL(scheme, host, port, parts.path.rstrip("/"))


def _path_within(base: str, path: str) -> bool:
    """True when ``path`` is ``base`` or below it on a segment boundary (/app, not /application)."""
    return not base or path == base or path.startswith(base + "/")


def referer_allowed(bound: str, referer: str | None, *, origin_only: bool = False) -> bool:
    """Whether a request's Referer satisfies a token bound to the referer ``bound``.

    ArcGIS binds a token to "the base URL of the web application": the Referer must be that
    URL or a page below it. So the origins must be equal — scheme, host and port, default
    ports normalised — and the Referer's path must be the bound path or below it on a
    segment boundary. ``origin_only`` compares the origins alone: for a browser's ``Origin``
    header (a WebSocket handshake), which never carries a path.

    The ArcGIS API for Python generates its tokens with the bare referer ``http`` (or
    ``https``) and then sends ``Referer: http``. Such a token is accepted with that bare
    value or any Referer of the same scheme: it binds nothing beyond the scheme. A bound
    value that is not an absolute URL (``app://…`` of the Runtime SDKs is one) must be sent
    back exactly.
    """
    if not referer or not referer.strip():
        return False
    bound, referer = bound.strip(), referer.strip()
    if bound.lower() in BARE_SCHEMES:
        got = referer.lower()
        return got == bound.lower() or got.startswith(bound.lower() + "://")
    want = parse_referer(bound)
    if want is None:
        return referer == bound
    got_url = parse_referer(referer)
    if got_url is None or got_url.origin != want.origin:
        return False
    return origin_only or _path_within(want.path, got_url.path)


def referer_matches(
    bound: str, referer: str | None, mode: str = "strict", *, origin_only: bool = False
) -> bool:
    """Whether a request passes a referer-bound token's check in ``mode``.

    ``strict`` applies :func:`referer_allowed`; ``lenient`` accepts a mismatch (the caller
    logs it); ``off`` accepts everything.
    """
    if mode == "off" or not bound:
        return True
    if referer_allowed(bound, referer, origin_only=origin_only):
        return True
    return mode == "lenient"
