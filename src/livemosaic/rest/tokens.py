"""Token issuing: ``generateToken`` at every path of spec 4.2, and the failed sign-in throttle.

POST only (GET shows the sign-in form; GET with credentials needs ``allow_get_token``).
The token is bound to a referer or to an address (``client=referer|ip|requestip``), lives
``expiration`` minutes clamped to ``max_token_minutes`` and is signed, never stored. Wrong
credentials answer 400 "Unable to generate token."; after ``signin_max_failures`` failures
of one user from one address within ``signin_window_seconds`` further attempts are refused
(429) without looking at the password until the window has room again. The count lives in
the catalog database (:class:`~livemosaic.core.signin.SigninThrottle`), shared by every
server process.
"""

from __future__ import annotations

import asyncio
import math
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
    address = origin.client_ip
    wait = await asyncio.to_thread(ctx.throttle.begin, username, address)  # counted from here
    if wait > 0:
        raise TooManySignins(
            f"Too many failed sign-in attempts for '{username}' from this address. "
            f"Wait {math.ceil(wait)} seconds and try again."
        )
    user = await asyncio.to_thread(check_credentials, ctx.users, username, password)
    if user is None:
        raise TokenNotIssued(INVALID_CREDENTIALS)
    await asyncio.to_thread(ctx.throttle.succeeded, username, address)
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
    "TokenNotIssued",
    "TooManySignins",
    "check_credentials",
    "generate_token",
    "router",
    "token_binding",
    "token_minutes",
]
