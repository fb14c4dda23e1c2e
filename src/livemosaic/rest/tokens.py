"""Token issuing: ``generateToken`` at every path of spec 4.2, and the failed sign-in throttle.

POST only (GET shows the sign-in form; GET with credentials needs ``allow_get_token``).
The token is bound to a referer or to an address (``client=referer|ip|requestip``), lives
``expiration`` minutes clamped to ``max_token_minutes`` and is signed, never stored. Wrong
credentials answer 400 "Unable to generate token."; after ``signin_max_failures`` failures
of one user from one address within ``signin_window_seconds`` further attempts are refused
without looking at the password until the window has room again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from livemosaic.core.ports import UserStore
from livemosaic.core.security import TokenClaims, User, hash_password, verify_password
from livemosaic.errors import InvalidParameter, LiveMosaicError, NotFound
from livemosaic.rest.auth import (
    TOKEN_COOKIE,
    insecure_credentials,
    now_ms,
    request_origin_of,
)
from livemosaic.rest.context import app_context, root_path
from livemosaic.rest.formats import json_response
from livemosaic.rest.html import display_path, page
from livemosaic.rest.params import Params, read_params

router = APIRouter()
METHODS = ["GET", "POST"]
TOKEN_PATHS = (
    "/tokens",
    "/tokens/generatetoken",
    "/admin/generatetoken",
    "/sharing/rest/generatetoken",
)
INVALID_CREDENTIALS = "Invalid username or password."
CLIENTS = ("referer", "referrer", "ip", "requestip")


class TokenNotIssued(LiveMosaicError):
    """generateToken refused: wrong credentials, bad binding, GET, …"""

    code = 400
    default_message = "Unable to generate token."


class TooManySignins(TokenNotIssued):
    """Too many failed sign-ins of one user from one address."""

    code = 429


class SigninThrottle:
    """Failed sign-ins per (username, address) in a sliding window (kept in this process)."""

    MAX_KEYS = 10_000

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures.get(key, deque())
        limit = self.clock() - self.window
        while times and times[0] <= limit:
            times.popleft()
        return times

    def wait_seconds(self, key: tuple[str, str]) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        times = self._recent(key)
        if len(times) < self.max_failures:
            return 0.0
        return max(0.0, times[-self.max_failures] + self.window - self.clock())

    def failure(self, key: tuple[str, str]) -> None:
        """Record a failed sign-in."""
        if key not in self._failures and len(self._failures) >= self.MAX_KEYS:
            for old in [k for k in list(self._failures) if not self._recent(k)]:
                del self._failures[old]
            if len(self._failures) >= self.MAX_KEYS:  # still full: forget the oldest key
                del self._failures[next(iter(self._failures))]
        times = self._recent(key)
        times.append(self.clock())
        self._failures[key] = times

    def success(self, key: tuple[str, str]) -> None:
        """Forget the failures of ``key`` after a good sign-in."""
        self._failures.pop(key, None)


_dummy_hash: str | None = None


def check_credentials(users: UserStore, username: str, password: str) -> User | None:
    """The user when the password is right (None otherwise; same cost for unknown users)."""
    global _dummy_hash
    try:
        user = users.get_user(username)
    except NotFound:
        if _dummy_hash is None:
            _dummy_hash = hash_password("livemosaic-no-such-user")
        verify_password(password, _dummy_hash)
        return None
    return user if verify_password(password, user.password_hash) else None


@dataclass(frozen=True, slots=True)
class Binding:
    """What a token is bound to."""

    client: Literal["referer", "ip", "none"]
    bound_to: str


def token_binding(params: Params, request: Request, client_ip: str) -> Binding:
    """The binding asked for: ``client`` (default referer when a referer is given, else
    requestip) with ``referer``/``referrer`` or ``ip``."""
    client = (params.get("client") or "").lower()
    referer = params.get("referer") or params.get("referrer")
    if client and client not in CLIENTS:
        raise InvalidParameter(
            "client", f"'{client}' is not a client type.", accepted="referer | ip | requestip"
        )
    if not client:
        client = "referer" if referer else "requestip"
    if client in ("referer", "referrer"):
        value = referer or request.headers.get("referer")
        if not value:
            raise InvalidParameter(
                "referer",
                "client=referer needs a referer value.",
                accepted="the referer (e.g. https://app.example.org)",
            )
        return Binding("referer", value)
    if client == "ip":
        ip = params.get("ip")
        if not ip:
            raise InvalidParameter("ip", "client=ip needs an ip value.", accepted="an IP address")
        return Binding("ip", ip)
    return Binding("ip", client_ip)


def token_minutes(params: Params, default: int, maximum: int) -> int:
    """``expiration`` in minutes, clamped to [1, maximum]."""
    minutes = params.integer("expiration", default)
    return max(1, min(minutes, maximum))


def _signin_page(request: Request, params: Params, result: dict[str, object] | None = None) -> str:
    return page(
        request,
        "signin.html",
        "Generate Token",
        action=display_path(request),
        username=params.get("username") or "",
        referer=params.get("referer") or "",
        expiration=params.get("expiration") or "",
        result=result,
        services_url=f"{root_path(request)}/rest/services",
    )


async def generate_token(request: Request) -> Response:
    """``generateToken``: check credentials, issue a signed token (spec 4.2)."""
    params = await read_params(request)
    ctx = app_context(request)
    settings = ctx.settings
    f = params.f
    has_credentials = params.get("username") is not None or params.raw("password") is not None
    if not has_credentials and f in (None, "html"):
        return HTMLResponse(_signin_page(request, params))
    if request.method != "POST" and not settings.allow_get_token:
        raise TokenNotIssued(
            "generateToken accepts POST requests only (credentials do not belong in URLs).",
            next_step="POST the parameters as a form, or set LIVEMOSAIC_ALLOW_GET_TOKEN=true "
            "for development.",
        )
    if params.get("serverUrl") and params.get("token"):
        raise TokenNotIssued(
            "Federation is not supported.",
            message="Federation is not supported",
            next_step="Sign in with username and password.",
        )
    origin = request_origin_of(request)
    insecure = insecure_credentials(origin, settings)
    if insecure is not None:
        raise insecure
    username = params.get("username") or ""
    password = params.raw("password") or ""
    if not username or not password:
        raise TokenNotIssued("username and password are required.")
    key = (username, origin.client_ip)
    wait = ctx.throttle.wait_seconds(key)
    if wait > 0:
        raise TooManySignins(
            f"Too many failed sign-in attempts for '{username}' from this address. "
            f"Wait {int(wait) + 1} seconds and try again."
        )
    user = await asyncio.to_thread(check_credentials, ctx.users, username, password)
    if user is None:
        ctx.throttle.failure(key)
        raise TokenNotIssued(INVALID_CREDENTIALS)
    ctx.throttle.success(key)
    if user.disabled:
        err = TokenNotIssued(f"The account '{username}' is disabled.")
        err.code = 403
        raise err
    binding = token_binding(params, request, origin.client_ip)
    minutes = token_minutes(params, settings.default_token_minutes, settings.max_token_minutes)
    expires = now_ms() + minutes * 60_000
    claims = TokenClaims(
        user.username, user.role, expires, binding.client, binding.bound_to, user.token_epoch
    )
    token = ctx.signer.issue(claims)
    data: dict[str, object] = {
        "token": token,
        "expires": expires,
        "ssl": origin.secure and not settings.allow_http_credentials,
    }
    if f in (None, "html"):
        response: Response = HTMLResponse(_signin_page(request, params, data))
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            max_age=minutes * 60,
            path=root_path(request),
            secure=origin.secure,
            httponly=True,
            samesite="strict",
        )
        return response
    return json_response(request, params, data)


for _path in TOKEN_PATHS:
    router.add_api_route(_path, generate_token, methods=METHODS)


__all__ = [
    "INVALID_CREDENTIALS",
    "TOKEN_PATHS",
    "Binding",
    "SigninThrottle",
    "TokenNotIssued",
    "TooManySignins",
    "check_credentials",
    "generate_token",
    "router",
    "token_binding",
    "token_minutes",
]
