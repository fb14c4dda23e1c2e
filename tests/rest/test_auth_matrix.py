"""The auth matrix: every endpoint × every identity × every token transport, on a real server.

The endpoints are enumerated from the routers ``create_app`` mounts (``ROUTERS``), so a new
route fails :func:`test_every_route_has_a_row` until :data:`ROWS` says how to call it and who
may. Each row is called for a secured and a public image service (both folder and root
spellings), the admin API, the GP service (Refresh Service ``submitJob`` and a job of
``pub1``) and the livemosaic extensions, by:

* anonymous, a ``user``, two publishers (``pub1`` owns the job, ``pub2`` does not), an
  administrator — each with a fresh token;
* seven tokens that must be worth nothing, each of an administrator (so any success is the
  worst case): expired, of a removed user, issued before a password change (the real
  ``livemosaic user passwd``), bound to another referer (sent with a look-alike Referer),
  bound to another IP address, forged (signed with another secret), garbled;

and each token travels by every transport the server reads: ``token=`` in the query, ``token``
in a form body (POST), ``X-Esri-Authorization: Bearer``, ``Authorization: Bearer``, the
``agstoken`` cookie — and the notification WebSocket (query, both headers, cookie), whose
subscription to each service is a cell too.

The expected-access rule (:func:`expected`) decides each cell: allowed cells must pass the
auth layer (and succeed where the administrator succeeds); refused cells must answer 499
(anonymous), 403 (signed in, not allowed) or 498 (a token worth nothing). A refused cell
that gets anything else is an unauthorized success; there must be none.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import WebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from livemosaic.app import AppContext
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.security import TokenClaims, TokenSigner, User, hash_password
from livemosaic.rest.routes import ROUTERS
from tests.figures import record
from tests.rest.secure import (
    BIN,
    TOKENS,
    ServeProcess,
    build_site,
    sign_in,
    submit,
    wait_job,
)

ROOT = "/arcgis"
REFUSED = {498, 499, 403}
EVIL_REFERER = "https://app.example.org.evil.net/"
TIME_BUDGET_SECONDS = 60.0
CLIENTS = 4  # client threads calling the server at once


# -- identities -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Who calls: a user and role (None for anonymous), or a token that must be worth nothing."""

    name: str
    username: str | None
    role: str  # anonymous | user | publisher | administrator
    valid: bool = True
    headers: dict[str, str] = field(default_factory=dict, hash=False)  # sent on every request


VALID = [
    Identity("anonymous", None, "anonymous"),
    Identity("user", "viewer", "user"),
    Identity("publisher", "pub1", "publisher"),
    Identity("other publisher", "pub2", "publisher"),
    Identity("administrator", "admin", "administrator"),
]
WORTHLESS = [
    Identity("expired", "admin", "administrator", valid=False),
    Identity("removed user", "gone", "administrator", valid=False),
    Identity("password changed", "moved", "administrator", valid=False),
    Identity("other referer", "admin", "administrator", False, {"Referer": EVIL_REFERER}),
    Identity("other IP", "admin", "administrator", valid=False),
    Identity("forged", "admin", "administrator", valid=False),
    Identity("garbled", "admin", "administrator", valid=False),
]
IDENTITIES = VALID + WORTHLESS
HTTP_TRANSPORTS = ("query", "form", "x-esri-authorization", "authorization", "cookie")
WS_TRANSPORTS = ("query", "x-esri-authorization", "authorization", "cookie")


# -- who may call what ------------------------------------------------------------------------
@dataclass(frozen=True)
class Access:
    """Who a call is for: everyone (``open``), a service's readers, a role, a job's owner."""

    kind: str  # open | service | role | job
    role: str = ""  # role: the lowest role; job: publisher
    private: bool = False  # service
    allowed_users: frozenset[str] = frozenset()  # service (empty: every signed-in user)
    owner: str = ""  # job

    def allows(self, who: Identity) -> bool:
        rank = {"anonymous": 0, "user": 1, "publisher": 2, "administrator": 3}
        if self.kind == "open":
            return True
        if self.kind == "service":
            if not self.private:
                return True
            if who.role == "anonymous":
                return False
            return (
                who.role == "administrator"
                or not self.allowed_users
                or (who.username in self.allowed_users)
            )
        if rank[who.role] < rank[self.role]:
            return False
        return self.kind == "role" or who.role == "administrator" or who.username == self.owner


OPEN = Access("open")
PUBLISHER = Access("role", "publisher")
ADMINISTRATOR = Access("role", "administrator")


def expected(access: Access, who: Identity) -> set[int] | None:
    """None when the cell must pass the auth layer; else the refusal codes it must get.

    A worthless token is refused with 498 wherever the caller is looked at; on open
    resources it may also be ignored (it then gets what anonymous gets).
    """
    if not who.valid:
        return None if access.kind == "open" else {498}
    if access.allows(who):
        return None
    return {499} if who.role == "anonymous" else {403}


# -- calls --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One request: path under the root, parameters, method, who may, what the admin gets."""

    path: str
    access: Access
    params: dict[str, str] = field(default_factory=dict, hash=False)
    method: str = "GET"
    reference: int = 200  # the administrator's outcome (anything but 200: an expected error)


@dataclass(frozen=True)
class Service:
    qualified: str  # Folder/name or name
    access: Access
    item: int  # an OBJECTID of its catalog


@dataclass
class Env:
    services: list[Service]
    job: str
    extent: dict[str, float]
    data: Path  # the registered data folder


def _bbox(env: Env) -> dict[str, str]:
    e = env.extent
    bbox = f"{e['xmin']},{e['ymin']},{e['xmax']},{e['ymax']}"
    return {"bbox": bbox, "size": "8,8", "format": "png", "f": "image"}


def _point(env: Env) -> dict[str, str]:
    e = env.extent
    point = {"x": (e["xmin"] + e["xmax"]) / 2, "y": (e["ymin"] + e["ymax"]) / 2}
    return {"geometry": json.dumps(point), "geometryType": "esriGeometryPoint"}


def _none(env: Env) -> dict[str, str]:
    return {}


# ImageServer routes by what follows ".../ImageServer": parameters, the administrator's outcome
# (anything but 200 is an error the operation gives after the access check)
SERVICE_OPS: dict[str, tuple[Callable[[Env], dict[str, str]], int]] = {
    "": (_none, 200),
    "/keyproperties": (_none, 200),
    "/statistics": (_none, 200),
    "/rasterfunctioninfos": (_none, 200),
    "/multidimensionalinfo": (_none, 400),  # these services are not multidimensional
    "/slices": (_none, 400),
    "/histograms": (_none, 200),
    "/colormap": (_none, 400),  # these services are not thematic
    "/rasterattributetable": (_none, 400),
    "/legend": (_none, 200),
    "/tile/{rest:path}": (_none, -1),  # not cached
    "/exportimage": (_bbox, 200),
    "/query": (lambda env: {"where": "1=1", "returnIdsOnly": "true"}, 200),
    "/identify": (_point, 200),
    "/getsamples": (_point, 200),
    "/{raster_id:int}": (_none, 200),
    "/{raster_id:int}/info": (_none, 200),
    "/{raster_id:int}/info/keyproperties": (_none, 200),
    "/{raster_id:int}/thumbnail": (lambda env: {"f": "image"}, 200),
    "/{raster_id:int}/image": (_none, -1),  # download not offered
    "/{operation:path}": (_none, -1),  # an unknown operation
}


def _service_tail(template: str) -> str | None:
    """What follows ``/imageserver`` in an ImageServer route (None for other routes)."""
    head, sep, tail = template.partition("/imageserver")
    return tail if sep and head.startswith("/rest/services/") else None


def _service_calls(template: str, env: Env) -> list[Call]:
    """A call of an ImageServer route for every service it can name (folder or root)."""
    folder_route = "{folder}" in template
    tail = _service_tail(template) or ""
    params, reference = SERVICE_OPS[tail]
    calls = []
    for svc in env.services:
        if ("/" in svc.qualified) != folder_route:
            continue
        path = f"/rest/services/{svc.qualified}/ImageServer" + (
            tail.replace("{rest:path}", "0/0/0")
            .replace("{raster_id:int}", str(svc.item))
            .replace("{operation:path}", "noSuchOperation")
        )
        calls.append(Call(path, svc.access, params(env), reference=reference))
    return calls


JOB = "/rest/services/System/PublishingTools/GPServer/Refresh%20Service/jobs/{job}"
SUBMIT = {"serviceName": "live", "serviceFolder": "Live", "serviceType": "ImageServer"}


def _job(path: str, **kw: Any) -> Callable[[Env], list[Call]]:
    return lambda env: [
        Call(path.format(job=env.job), Access("job", "publisher", owner="pub1"), **kw)
    ]


def _one(path: str, access: Access, **kw: Any) -> Callable[[Env], list[Call]]:
    return lambda env: [Call(path, access, **kw)]


def _viewer(template: str, env: Env, page: str = "viewer") -> list[Call]:
    folder_route = "{folder}" in template
    return [
        Call(f"/livemosaic/{page}/{s.qualified}", s.access)
        for s in env.services
        if ("/" in s.qualified) == folder_route
    ]


GP = "/rest/services/System/PublishingTools/GPServer"
ADMIN_SERVICE = "/admin/services/Live/live.ImageServer"
ROWS: dict[str, Callable[[Env], list[Call]]] = {
    # token issuing: no token needed (without credentials: a 400 saying they are missing)
    "/tokens": _one("/tokens", OPEN, method="POST", reference=-1),
    "/tokens/generatetoken": _one("/tokens/generateToken", OPEN, method="POST", reference=-1),
    "/admin/generatetoken": _one("/admin/generateToken", OPEN, method="POST", reference=-1),
    "/sharing/rest/generatetoken": _one(
        "/sharing/rest/generateToken", OPEN, method="POST", reference=-1
    ),
    # the admin API: publishers read, administrators change
    "/admin": _one("/admin", PUBLISHER),
    "/admin/info": _one("/admin/info", PUBLISHER),
    "/admin/services": _one("/admin/services", PUBLISHER),
    "/admin/services/{path:path}": lambda env: [
        Call("/admin/services/Live", PUBLISHER),
        Call(ADMIN_SERVICE, PUBLISHER),
        Call(f"{ADMIN_SERVICE}/status", PUBLISHER),
        Call("/admin/services/Private/granted.ImageServer", PUBLISHER),
        Call(f"{ADMIN_SERVICE}/start", ADMINISTRATOR, method="POST"),
    ],
    "/admin/{rest:path}": _one("/admin/system", PUBLISHER, reference=404),
    # the services directory
    "/rest/services": _one("/rest/services", OPEN),
    "/rest/services/{folder}": lambda env: [
        Call("/rest/services/Live", OPEN),
        Call("/rest/services/Private", Access("service", private=True)),
        Call("/rest/services/System", PUBLISHER),
    ],
    "/rest/info": _one("/rest/info", OPEN),
    "/rest": _one("/rest", OPEN, reference=302),
    "/info": _one("/info", OPEN, reference=404),  # not an ArcGIS resource
    "/rest/directories/arcgisoutput/{path:path}": _one(
        "/rest/directories/arcgisoutput/nothing/here.png", OPEN, reference=404
    ),
    # Refresh Service (System/PublishingTools): publishers; a job: its submitter and admins
    "/rest/services/system/publishingtools/gpserver": _one(GP, PUBLISHER),
    "/rest/services/system/publishingtools/gpserver/{task}": _one(
        f"{GP}/Refresh%20Service", PUBLISHER
    ),
    "/rest/services/system/publishingtools/gpserver/{task}/submitjob": _one(
        f"{GP}/Refresh%20Service/submitJob", PUBLISHER, params=SUBMIT, method="POST"
    ),
    "/rest/services/system/publishingtools/gpserver/{task}/execute": _one(
        f"{GP}/Refresh%20Service/execute", PUBLISHER, params=SUBMIT, method="POST", reference=-1
    ),
    "/rest/services/system/publishingtools/gpserver/{task}/jobs/{job_id}": _job(JOB),
    "/rest/services/system/publishingtools/gpserver/{task}/jobs/{job_id}/cancel": _job(
        JOB + "/cancel", method="POST"
    ),
    "/rest/services/system/publishingtools/gpserver/{task}/jobs/{job_id}/results": _job(
        JOB + "/results", reference=-1
    ),
    "/rest/services/system/publishingtools/gpserver/{task}/jobs/{job_id}/results/{param}": _job(
        JOB + "/results/refreshResults", reference=-1
    ),
    "/rest/services/system/publishingtools/gpserver/{task}/jobs/{job_id}/inputs": _job(
        JOB + "/inputs"
    ),
    "/rest/services/system/publishingtools/gpserver/{task}/jobs/{job_id}/inputs/{param}": _job(
        JOB + "/inputs/serviceName"
    ),
    "/rest/services/system/publishingtools/gpserver/{task}/{rest:path}": _one(
        f"{GP}/Refresh%20Service/nothing", PUBLISHER, reference=-1
    ),
    "/rest/services/system/{rest:path}": _one(
        "/rest/services/System/Nothing/GPServer", PUBLISHER, reference=-1
    ),
    # livemosaic extensions
    "/livemosaic/viewer/{name}": lambda env: _viewer("{name}", env),
    "/livemosaic/viewer/{folder}/{name}": lambda env: _viewer("{folder}/{name}", env),
    "/livemosaic/basemap/{name}": lambda env: _viewer("{name}", env, "basemap"),
    "/livemosaic/basemap/{folder}/{name}": lambda env: _viewer("{folder}/{name}", env, "basemap"),
    "/livemosaic/static/viewer/{filename}": _one("/livemosaic/static/viewer/viewer.js", OPEN),
    "/livemosaic/ingest": lambda env: [
        Call("/livemosaic/ingest", PUBLISHER, {"paths": str(env.data / "no-such.tif")}, "POST", -1)
    ],
    "/livemosaic/quarantine": _one("/livemosaic/quarantine", PUBLISHER),
    "/livemosaic/missing": _one("/livemosaic/missing", PUBLISHER, params={"dataset": "tiles"}),
}
WS_ROUTE = "/livemosaic/ws"  # checked by test_websocket_matrix


def route_table() -> dict[str, set[str]]:
    """Every route the app mounts: path (under the root) → methods ('WS' for a WebSocket)."""
    routes: dict[str, set[str]] = {}
    for router in ROUTERS:
        for route in router.routes:
            path = str(getattr(route, "path", ""))
            methods = {"WS"} if isinstance(route, WebSocketRoute) else set(route.methods)  # type: ignore[attr-defined]
            routes.setdefault(path, set()).update(methods)
    return routes


def calls_of(template: str, env: Env) -> list[Call]:
    """The calls of a route: its row in ROWS, or one per service for an ImageServer route."""
    if template in ROWS:
        return ROWS[template](env)
    return _service_calls(template, env)


# -- outcomes -----------------------------------------------------------------------------------
def outcome(response: httpx.Response) -> int:
    """The ArcGIS code of an answer: 200 for success, else the error's code."""
    kind = response.headers.get("content-type", "")
    if response.status_code in (301, 302, 303, 307):
        return response.status_code
    if "json" in kind:
        body: Any = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return int(body["error"]["code"])
        if isinstance(body, dict) and body.get("status") == "error":  # admin envelope
            return int(body["code"])
        return 200 if response.status_code == 200 else response.status_code
    if "html" in kind:  # an HTML error page names its code
        m = re.search(r'data-error-code="(\d+)"', response.text)
        if m:
            return int(m.group(1))
    return response.status_code


@dataclass
class Tally:
    checks: int = 0
    unauthorized: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # allowed but refused, or an odd refusal
    per_transport: Counter[str] = field(default_factory=Counter)


def judge(
    tally: Tally, label: str, access: Access, who: Identity, got: int, reference: int
) -> None:
    tally.checks += 1
    want = expected(access, who)
    if want is None:
        if got in REFUSED and who.valid:
            tally.wrong.append(f"{label}: refused with {got}, should pass")
        elif who.valid and reference == 200 and got != 200:
            tally.wrong.append(f"{label}: got {got} where the administrator gets 200")
        return
    if got in want:
        return
    if got in REFUSED:
        tally.wrong.append(f"{label}: refused with {got}, expected {sorted(want)}")
    else:
        tally.unauthorized.append(f"{label}: got {got}, expected refusal {sorted(want)}")


# -- the site ---------------------------------------------------------------------------------
@dataclass
class Matrix:
    ctx: AppContext  # the test's own connections to the server's catalog
    base: str  # http://127.0.0.1:port
    env: Env
    tokens: dict[str, str]  # identity name → token (none for anonymous)

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + ROOT + WS_ROUTE


def _passwd(ctx: AppContext, username: str, password: str) -> None:
    """The real ``livemosaic user passwd`` (in another process, on the same catalog)."""
    subprocess.run(
        [str(BIN), "--data-dir", str(ctx.settings.data_dir), "user", "passwd", username,
         "--password-stdin"],
        input=password, text=True, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def _tokens(ctx: AppContext, http: httpx.Client) -> dict[str, str]:
    tokens = {w.name: sign_in(http, w.username) for w in VALID if w.username}
    extra = {}  # administrators of this test only (not in the shared PASSWORDS)
    for name in ("gone", "moved"):
        password = f"{name}-password-1"
        ctx.users.add_user(User(name, "administrator", hash_password(password)))
        form = {"username": name, "password": password, "f": "json"}
        extra[name] = str(http.post(TOKENS, data=form).json()["token"])
    tokens["removed user"] = extra["gone"]
    ctx.users.remove_user("gone")
    tokens["password changed"] = extra["moved"]
    _passwd(ctx, "moved", "a-new-password-2")
    admin = ctx.users.get_user("admin")
    past = int(time.time() * 1000) - 1000
    tokens["expired"] = ctx.signer.issue(
        TokenClaims("admin", "administrator", past, "ip", "127.0.0.1", admin.token_epoch)
    )
    tokens["other referer"] = sign_in(
        http, "admin", client="referer", referer="https://app.example.org"
    )
    tokens["other IP"] = sign_in(http, "admin", client="ip", ip="10.9.8.7")
    future = int(time.time() * 1000) + 3_600_000
    claims = TokenClaims("admin", "administrator", future, "ip", "127.0.0.1", admin.token_epoch)
    tokens["forged"] = TokenSigner(b"not-the-server-secret-at-all").issue(claims)
    good = sign_in(http, "admin")
    tokens["garbled"] = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    return tokens


@pytest.fixture(scope="module")
def matrix(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    work = tmp_path_factory.mktemp("matrix")
    ctx = build_site(work, shared_data)
    ctx.publisher.publish(ServiceDefinition(name="rootsec", dataset="tiles", private=True))
    # `livemosaic serve` in its own process: the clients of this process do not slow it down
    server = ServeProcess(ctx.settings.data_dir, shared_data, work / "serve.log")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=60, trust_env=False) as http:
            yield _site(ctx, server.base, http, shared_data)
    finally:
        server.stop()
        ctx.close()


def _site(ctx: AppContext, base: str, http: httpx.Client, data: Path) -> Matrix:
    tokens = _tokens(ctx, http)
    admin = {"X-Esri-Authorization": f"Bearer {tokens['administrator']}"}

    def first_item(qualified: str) -> int:
        r = http.get(f"{ROOT}/rest/services/{qualified}/ImageServer/query",
                     params={"where": "1=1", "returnIdsOnly": "true", "f": "json"},
                     headers=admin)  # fmt: skip
        return int(r.json()["objectIds"][0])

    secured_any = Access("service", private=True)
    granted = Access("service", private=True, allowed_users=frozenset({"pub1"}))
    public = Access("service")
    services = [
        Service("Private/granted", granted, first_item("Private/granted")),
        Service("Live/live", public, first_item("Live/live")),
        Service("rootsec", secured_any, first_item("rootsec")),
        Service("pub", public, first_item("pub")),
    ]
    info = http.get(f"{ROOT}/rest/services/pub/ImageServer", params={"f": "json"}).json()
    job = submit(http, {"X-Esri-Authorization": f"Bearer {tokens['publisher']}"}, **SUBMIT)
    wait_job(http, {"X-Esri-Authorization": f"Bearer {tokens['publisher']}"}, job["jobId"])
    env = Env(services, str(job["jobId"]), info["extent"], data)
    return Matrix(ctx, base, env, tokens)


# -- requests -----------------------------------------------------------------------------------
def send(http: httpx.Client, call: Call, who: Identity, token: str | None, transport: str) -> int:
    params = {"f": "json", **call.params}
    headers = dict(who.headers)
    query: dict[str, str] = {}
    method = "POST" if transport == "form" else call.method
    if token is not None:
        if transport == "query":
            query["token"] = token
        elif transport == "form":
            params["token"] = token
        elif transport == "x-esri-authorization":
            headers["X-Esri-Authorization"] = f"Bearer {token}"
        elif transport == "authorization":
            headers["Authorization"] = f"Bearer {token}"
        else:
            headers["Cookie"] = f"agstoken={token}"
    url = ROOT + call.path
    if method == "GET":
        r = http.get(url, params={**params, **query}, headers=headers)
    else:
        r = http.post(url, params=query, data=params, headers=headers)
    return outcome(r)


def test_every_route_has_a_row() -> None:
    missing = [
        t for t in route_table() if t != WS_ROUTE and t not in ROWS and "/imageserver" not in t
    ]
    assert not missing, f"add these routes to ROWS (how to call them, who may): {missing}"


def http_matrix(matrix: Matrix, tally: Tally) -> int:
    """Judge every HTTP cell; returns the number of distinct calls."""
    cells: list[tuple[Call, Identity, str]] = []
    for template, methods in sorted(route_table().items()):
        if template == WS_ROUTE:
            continue
        for call in calls_of(template, matrix.env):
            for who in IDENTITIES:
                for transport in HTTP_TRANSPORTS if who.username else ("none",):
                    if transport == "form" and "POST" not in methods:
                        continue  # this route takes no form body
                    cells.append((call, who, transport))
    calls = {call for call, _who, _transport in cells}
    with httpx.Client(base_url=matrix.base, timeout=60, trust_env=False) as http:
        admin = matrix.tokens["administrator"]
        references = {call: send(http, call, VALID[-1], admin, "query") for call in calls}
    bad_reference = [
        f"{c.path}: administrator got {got}, the row says {c.reference}"
        for c, got in references.items()
        if c.reference >= 0 and got != c.reference
    ]
    assert not bad_reference, "\n".join(bad_reference)  # the table calls what it means to

    def run(part: list[tuple[Call, Identity, str]]) -> list[tuple[Call, Identity, str, int]]:
        with httpx.Client(base_url=matrix.base, timeout=60, trust_env=False) as http:
            return [
                (
                    call,
                    who,
                    transport,
                    send(http, call, who, matrix.tokens.get(who.name), transport),
                )
                for call, who, transport in part
            ]

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        parts = [cells[i::CLIENTS] for i in range(CLIENTS)]
        results = [r for part in pool.map(run, parts) for r in part]
    by_transport: dict[tuple[Call, str], dict[str, int]] = {}
    for call, who, transport, got in results:
        method = "POST" if transport == "form" else call.method
        label = f"{method} {call.path} [{who.name} via {transport}]"
        judge(tally, label, call.access, who, got, references[call])
        tally.per_transport[transport] += 1
        by_transport.setdefault((call, who.name), {})[transport] = got
    # a token means the same whatever carries it
    for (call, name), outcomes in by_transport.items():
        if len(set(outcomes.values())) > 1:
            tally.wrong.append(f"{call.path} [{name}]: transports disagree: {outcomes}")
    return len(calls)


def ws_cell(ws_url: str, who: Identity, token: str | None, transport: str, service: str) -> int:
    """Connect, subscribe to ``service``: 200 subscribed, an error event's code, or 498 when
    the handshake refuses the token (then close code 4498)."""
    url = ws_url
    headers = dict(who.headers)
    if token is not None:
        if transport == "query":
            url += f"?token={token}"
        elif transport == "x-esri-authorization":
            headers["X-Esri-Authorization"] = f"Bearer {token}"
        elif transport == "authorization":
            headers["Authorization"] = f"Bearer {token}"
        else:
            headers["Cookie"] = f"agstoken={token}"
    with connect(url, proxy=None, open_timeout=10, additional_headers=headers or None) as ws:
        first = json.loads(ws.recv(timeout=10))
        if first["event"] == "error":
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 4498, (ws.close_code, ws.close_reason)
            return int(first["code"])
        ws.send(json.dumps({"op": "subscribe", "services": [f"{service}.ImageServer"]}))
        while True:
            answer = json.loads(ws.recv(timeout=10))
            if answer["event"] == "subscribed":
                return 200
            if answer["event"] == "error":
                return int(answer["code"])


def websocket_matrix(matrix: Matrix, tally: Tally) -> None:
    """Judge a subscription to every service by every identity and WebSocket transport."""
    assert WS_ROUTE in route_table()
    for svc in matrix.env.services:
        for who in IDENTITIES:
            outcomes = {}
            for transport in WS_TRANSPORTS if who.username else ("none",):
                token = matrix.tokens.get(who.name)
                got = ws_cell(matrix.ws_url, who, token, transport, svc.qualified)
                label = f"WS subscribe {svc.qualified} [{who.name} via {transport}]"
                judge(tally, label, svc.access, who, got, 200)
                tally.per_transport[f"websocket {transport}"] += 1
                outcomes[transport] = got
            if len(set(outcomes.values())) > 1:
                tally.wrong.append(
                    f"WS {svc.qualified} [{who.name}]: transports disagree: {outcomes}"
                )


def test_auth_matrix(matrix: Matrix) -> None:
    started = time.monotonic()
    tally = Tally()
    calls = http_matrix(matrix, tally)
    http_checks = tally.checks
    websocket_matrix(matrix, tally)
    elapsed = time.monotonic() - started
    record(
        "auth_matrix",
        checks=tally.checks,
        http_checks=http_checks,
        websocket_checks=tally.checks - http_checks,
        calls=calls,
        routes=len(route_table()),
        identities=len(IDENTITIES),
        transports=len(HTTP_TRANSPORTS) + 1,
        unauthorized_successes=len(tally.unauthorized),
        wrong_refusals=len(tally.wrong),
        seconds=round(elapsed, 1),
    )
    assert not tally.unauthorized, "\n".join(tally.unauthorized[:30])
    assert not tally.wrong, "\n".join(tally.wrong[:30])
    for transport in (*HTTP_TRANSPORTS, *(f"websocket {t}" for t in WS_TRANSPORTS)):
        assert tally.per_transport[transport] > 0, transport
    assert elapsed < 2 * TIME_BUDGET_SECONDS  # generous: a shared, noisy machine
