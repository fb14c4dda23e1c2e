"""Who is calling, and may they? Tokens, principals, roles and service access (spec 4).

:class:`AuthMiddleware` runs before routing. It reads the request parameters once (so a
``token`` in a POST body counts), finds the token where spec 4.3 says, in this order —
header ``X-Esri-Authorization: Bearer``, parameter ``token``, header ``Authorization:
Bearer``, cookie ``agstoken`` — and verifies it: signature and expiry, referer or IP
binding, and the user as stored now (removed, disabled, or a token epoch bumped by a new
password or role all revoke it). :func:`authenticate` is that check, and the notification
WebSocket uses it too (handshake and re-checks), so both see the same rules. The outcome
waits on the request state; routes ask for it with :func:`current_principal`, so a bad
token only fails requests that care who is calling. Roles are checked with
:func:`require_role`, the one place that decides between 499 (no token), 403 (role too low)
and passing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livemosaic.core.models import ServiceDefinition
from livemosaic.core.security import (
    ANONYMOUS,
    InvalidToken,
    Principal,
    TokenClaims,
    referer_matches,
)
from livemosaic.core.service_properties import service_properties
from livemosaic.errors import (
    Forbidden,
    InsecureTransport,
    LiveMosaicError,
    NotFound,
    TokenInvalid,
    TokenRequired,
)
from livemosaic.rest.errors import error_response_for_scope
from livemosaic.rest.origin import Origin, request_origin
from livemosaic.rest.params import FORM_TYPES, Params, read_params

if TYPE_CHECKING:
    from livemosaic.context import AppContext
    from livemosaic.settings import Settings

log = logging.getLogger("livemosaic.auth")

TOKEN_COOKIE = "agstoken"
SYSTEM_FOLDER = "System"
SYSTEM_ROLE = "publisher"  # System/PublishingTools: publishers and administrators
_SIGN_IN = "Sign in again with generateToken."


def now_ms() -> int:
    """Current time in epoch milliseconds."""
    return int(time.time() * 1000)


def _bearer(value: str | None, *, bare_ok: bool) -> str | None:
    """The token of ``Bearer <token>`` (or a bare token when ``bare_ok``)."""
    if not value:
        return None
    parts = value.strip().split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1].strip() or None
    if bare_ok and len(parts) == 1:
        return parts[0]
    return None


def find_token(headers: Headers, params: Params, cookies: Mapping[str, str]) -> str | None:
    """The token a request carries, by the precedence of spec 4.3 (None when there is none)."""
    return (
        _bearer(headers.get("x-esri-authorization"), bare_ok=True)
        or params.get("token")
        or _bearer(headers.get("authorization"), bare_ok=False)
        or (cookies.get(TOKEN_COOKIE) or "").strip()
        or None
    )


def scope_token(scope: Scope, *, cookies: bool = True) -> str | None:
    """The token of a WebSocket handshake (or any request without a body), found as for HTTP:
    ``X-Esri-Authorization``, ``?token=``, ``Authorization: Bearer``, cookie ``agstoken``
    (unless ``cookies`` is False: a browser sent it on behalf of a foreign page)."""
    headers = Headers(scope=scope)
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    params = Params(parse_qsl(query, keep_blank_values=True))
    return find_token(headers, params, _cookies(headers) if cookies else {})


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header carries no token
        return {}
    return {k: m.value for k, m in jar.items()}


def insecure_credentials(origin: Origin, settings: Settings) -> InsecureTransport | None:
    """The error to give when credentials travel over plain HTTP to a remote address."""
    if origin.secure or origin.local or settings.allow_http_credentials:
        return None
    return InsecureTransport(
        "Passwords and tokens are refused over plain HTTP to a non-loopback address.",
        next_step="Use https:// (serve --certfile/--keyfile, or a TLS proxy sending "
        "X-Forwarded-Proto), or set LIVEMOSAIC_ALLOW_HTTP_CREDENTIALS=true.",
    )


@dataclass(frozen=True, slots=True)
class Caller:
    """Where a token is presented: how the request reached us and the page it came from.

    ``referer`` is the ``Referer`` header or, when there is none, the ``Origin`` header
    (``origin_only``: it has no path, so only origins are compared). Browsers send no
    Referer with a WebSocket handshake, only Origin.
    """

    origin: Origin
    referer: str | None
    origin_only: bool = False


def caller_of(scope: Scope, settings: Settings) -> Caller:
    """The :class:`Caller` of an HTTP request or WebSocket handshake."""
    headers = Headers(scope=scope)
    origin = request_origin(scope, settings)
    referer = headers.get("referer")
    if referer:
        return Caller(origin, referer)
    return Caller(origin, headers.get("origin"), origin_only=True)


def _check_binding(ctx: AppContext, claims: TokenClaims, caller: Caller) -> None:
    if claims.client == "ip" and claims.bound_to != caller.origin.client_ip:
        raise TokenInvalid("The token was issued for another client address.", next_step=_SIGN_IN)
    if claims.client != "referer":
        return
    mode = ctx.settings.referer_binding
    only = caller.origin_only
    if not referer_matches(claims.bound_to, caller.referer, mode, origin_only=only):
        raise TokenInvalid(
            "The token was issued for another referer (send the same Referer header "
            "as the referer used to generate it).",
            next_step=_SIGN_IN,
        )
    if mode == "lenient" and not referer_matches(claims.bound_to, caller.referer, origin_only=only):
        log.info("referer %r does not match token bound to %r", caller.referer, claims.bound_to)


def authenticate(ctx: AppContext, token: str, caller: Caller) -> Principal:
    """The principal a token stands for, here and now — the one check for HTTP and WebSocket.

    Refused (InsecureTransport) over plain HTTP to a remote address; refused (TokenInvalid)
    when the token is malformed, forged, expired, bound to another address or referer, or
    revoked: its user removed or disabled, or the user's token epoch bumped by a new
    password or role.
    """
    insecure = insecure_credentials(caller.origin, ctx.settings)
    if insecure is not None:
        raise insecure
    try:
        claims = ctx.signer.verify(token, now_ms())
    except InvalidToken as exc:
        raise TokenInvalid(f"The token is not valid ({exc}).", next_step=_SIGN_IN) from None
    _check_binding(ctx, claims, caller)
    try:
        user = ctx.users.get_user(claims.username)
    except NotFound:
        raise TokenInvalid("The token's user no longer exists.", next_step=_SIGN_IN) from None
    if user.disabled:
        raise TokenInvalid("The token's user is disabled.", next_step=_SIGN_IN)
    if user.token_epoch != claims.epoch:
        raise TokenInvalid("The token was revoked (password or role changed).", next_step=_SIGN_IN)
    return Principal(user.username, user.role)


def current_principal(request: Request) -> Principal:
    """Who is calling (ANONYMOUS without a token); raises the token's error if it was bad."""
    state: dict[str, Any] = request.scope.get("state") or {}
    error = state.get("auth_error")
    if isinstance(error, LiveMosaicError):
        raise error
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else ANONYMOUS


def request_origin_of(request: Request) -> Origin:
    """The request's :class:`Origin` (computed by the middleware, else now)."""
    origin = (request.scope.get("state") or {}).get("origin")
    if isinstance(origin, Origin):
        return origin
    ctx: AppContext = request.app.state.ctx
    return request_origin(request.scope, ctx.settings)


def require_role(principal: Principal, role: str) -> Principal:
    """``principal`` if its role ranks at least ``role``; else 499 (anonymous) or 403."""
    if principal.at_least(role):
        return principal
    if principal.is_anonymous:
        raise TokenRequired(
            "This resource is secured: get a token from generateToken and send it.",
        )
    raise Forbidden(
        f"User '{principal.username}' has the role {principal.role}; this needs {role} or higher."
    )


def can_read_service(principal: Principal, definition: ServiceDefinition) -> bool:
    """Whether a caller may read a service: public, or secured and granted to the caller.

    A secured (``private``) service is readable by administrators and, when neither
    ``properties.allowedUsers`` nor ``properties.allowedRoles`` is set, by every signed-in
    user; otherwise by the users and roles those comma lists name.
    """
    if not definition.private:
        return True
    if principal.is_anonymous:
        return False
    if principal.role == "administrator":
        return True
    props = service_properties(definition)
    users, roles = props.allowed_users, props.allowed_roles
    if not users and not roles:
        return True
    return principal.username in users or principal.role in roles


def check_service_access(request: Request, definition: ServiceDefinition) -> Principal:
    """The caller if it may read ``definition``; else 499 (anonymous) or 403."""
    principal = current_principal(request)
    if can_read_service(principal, definition):
        return principal
    if principal.is_anonymous:
        raise TokenRequired("This service is secured: get a token from generateToken.")
    raise Forbidden(f"User '{principal.username}' may not read this service.")


def hide_missing_service(request: Request, folder: str) -> None:
    """Existence hiding (spec 4.5): anonymous callers get 499 for a missing name in a folder
    that holds secured services, so a 404 cannot tell secured names from unknown ones."""
    principal = current_principal(request)
    if not principal.is_anonymous:
        return
    if folder.lower() == SYSTEM_FOLDER.lower():
        raise TokenRequired("This folder is secured: get a token from generateToken.")
    ctx: AppContext = request.app.state.ctx
    for snap in ctx.registry.all():
        d = snap.definition
        if d.private and d.folder.lower() == folder.lower():
            raise TokenRequired("This folder is secured: get a token from generateToken.")


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole request body, and whether the client disconnected meanwhile."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``body`` once, then waits on the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class AuthMiddleware:
    """Resolve the caller of every HTTP request before routing (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Parse parameters, find and verify the token, then run the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        downstream = receive
        parse_receive = receive
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if scope["method"] == "POST" and ctype in FORM_TYPES:
            try:
                body, gone = await _read_body(receive)
            except LiveMosaicError as exc:
                await error_response_for_scope(scope, exc)(scope, receive, send)
                return
            if gone:
                return
            downstream = _replay(body, receive)
            parse_receive = _replay(body, receive)
        try:
            params = await read_params(Request(scope, parse_receive))
        except LiveMosaicError as exc:
            await error_response_for_scope(scope, exc)(scope, receive, send)
            return
        ctx: AppContext = scope["app"].state.ctx
        state = scope.setdefault("state", {})
        caller = caller_of(scope, ctx.settings)
        state["origin"] = caller.origin
        token = find_token(headers, params, _cookies(headers))
        if token:
            try:
                state["principal"] = authenticate(ctx, token, caller)
            except LiveMosaicError as exc:
                state["auth_error"] = exc
        await self.app(scope, downstream, send)


__all__ = [
    "SYSTEM_FOLDER",
    "SYSTEM_ROLE",
    "TOKEN_COOKIE",
    "AuthMiddleware",
    "Caller",
    "authenticate",
    "caller_of",
    "can_read_service",
    "check_service_access",
    "current_principal",
    "find_token",
    "hide_missing_service",
    "insecure_credentials",
    "request_origin_of",
    "require_role",
    "scope_token",
]
