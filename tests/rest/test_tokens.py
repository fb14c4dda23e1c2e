"""Token issuing and checking (spec 2.3, 4.2-4.4): paths, bindings, expiry, forgery,
revocation, throttling, transports, forwarded headers and HTTPS."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from livemosaic.core.security import TokenClaims
from tests.rest.secure import (
    PASSWORDS,
    ROOT,
    TOKENS,
    Running,
    ServeProcess,
    bearer,
    build_site,
    prepare_site,
    running,
    sign_in,
)

SEC = f"{ROOT}/rest/services/Private/sec/ImageServer"


@pytest.fixture(scope="module")
def site(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ctx = build_site(tmp_path_factory.mktemp("tokens"), shared_data, signin_max_failures=3)
    with running(ctx) as r:
        yield r


def error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert "error" in body, body
    return dict(body["error"])


def reads(site: Running, headers: dict[str, str] | None = None, **params: str) -> int:
    """200 when the secured service answers, else the error code."""
    r = site.client.get(SEC, params={"f": "json", **params}, headers=headers or {})
    body = r.json()
    return int(body["error"]["code"]) if "error" in body else 200


def now_ms() -> int:
    return int(time.time() * 1000)


# -- issuing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/tokens/generateToken",
        "/tokens",
        "/tokens/",
        "/admin/generateToken",
        "/sharing/rest/generateToken",
    ],
)
def test_every_token_path_issues_working_tokens(site: Running, path: str) -> None:
    before = now_ms()
    r = site.client.post(
        f"{ROOT}{path}", data={"username": "viewer", "password": PASSWORDS["viewer"], "f": "json"}
    )
    body = r.json()
    assert set(body) == {"token", "expires", "ssl"}, body
    assert body["ssl"] is False
    assert before + 59 * 60_000 <= body["expires"] <= now_ms() + 60 * 60_000  # default 60 min
    assert reads(site, bearer(body["token"])) == 200


def test_get_is_refused_unless_allowed(site: Running) -> None:
    r = site.client.get(
        TOKENS, params={"username": "viewer", "password": PASSWORDS["viewer"], "f": "json"}
    )
    err = error(r)
    assert err["code"] == 400 and err["message"] == "Unable to generate token."
    assert "POST" in " ".join(err["details"])  # type: ignore[arg-type]
    page = site.client.get(TOKENS)  # without credentials: the sign-in form
    assert "text/html" in page.headers["content-type"] and 'method="post"' in page.text


def test_get_allowed_by_setting(shared_data: Path, tmp_path: Path) -> None:
    ctx = build_site(tmp_path, shared_data, allow_get_token=True)
    with running(ctx) as other:
        r = other.client.get(
            TOKENS, params={"username": "viewer", "password": PASSWORDS["viewer"], "f": "json"}
        )
        assert "token" in r.json()


def test_bad_credentials(site: Running) -> None:
    for user, password in (("viewer", "wrong-password"), ("nobody", "whatever-123")):
        err = error(
            site.client.post(TOKENS, data={"username": user, "password": password, "f": "json"})
        )
        assert err == {
            "code": 400,
            "message": "Unable to generate token.",
            "details": ["Invalid username or password."],
        }


def test_failed_signins_are_throttled(site: Running) -> None:
    form = {"username": "admin", "f": "json"}
    for _ in range(3):  # signin_max_failures=3
        err = error(site.client.post(TOKENS, data={**form, "password": "wrong-one"}))
        assert err["details"] == ["Invalid username or password."]
    # now even the right password is refused, without being checked
    err = error(site.client.post(TOKENS, data={**form, "password": PASSWORDS["admin"]}))
    assert err["code"] == 429 and err["message"] == "Unable to generate token."
    text = " ".join(err["details"])  # type: ignore[arg-type]
    assert "Wait" in text and "seconds" in text
    # other users from the same address are not affected
    assert sign_in(site.client, "pub1")


def test_expiration_is_clamped(site: Running) -> None:
    start = now_ms()
    long = site.client.post(
        TOKENS,
        data={
            "username": "viewer",
            "password": PASSWORDS["viewer"],
            "expiration": "100000",
            "f": "json",
        },
    ).json()
    assert start + 1439 * 60_000 <= long["expires"] <= now_ms() + 1440 * 60_000
    short = site.client.post(
        TOKENS,
        data={
            "username": "viewer",
            "password": PASSWORDS["viewer"],
            "expiration": "0",
            "f": "json",
        },
    ).json()
    assert short["expires"] <= now_ms() + 60_000


def test_federation_is_refused(site: Running) -> None:
    err = error(
        site.client.post(
            TOKENS, data={"serverUrl": "https://x.example/arcgis", "token": "abc", "f": "json"}
        )
    )
    assert err["code"] == 400 and err["message"] == "Federation is not supported"


def test_html_sign_in_sets_the_agstoken_cookie(site: Running) -> None:
    with httpx.Client(base_url=site.base) as browser:  # keeps cookies, like a browser
        assert "error" in browser.get(SEC, params={"f": "json"}).json()
        r = browser.post(TOKENS, data={"username": "viewer", "password": PASSWORDS["viewer"]})
        assert "text/html" in r.headers["content-type"]
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("agstoken=") and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie and "Path=/arcgis" in cookie
        assert cookie.split(";")[0].split("=", 1)[1] in r.text
        assert browser.get(SEC, params={"f": "json"}).json()["name"] == "sec"


# -- transports and precedence ---------------------------------------------------------------
def test_token_transports(site: Running) -> None:
    token = site.token("viewer")
    assert reads(site) == 499
    assert reads(site, bearer(token)) == 200
    assert reads(site, token=token) == 200
    assert reads(site, {"Authorization": f"Bearer {token}"}) == 200
    body = site.client.post(SEC, data={"f": "json", "token": token}).json()  # token in a POST body
    assert body["name"] == "sec"
    with httpx.Client(base_url=site.base) as browser:
        browser.cookies.set("agstoken", token)
        assert browser.get(SEC, params={"f": "json"}).json()["name"] == "sec"


def test_token_precedence(site: Running) -> None:
    good = site.token("viewer")
    # X-Esri-Authorization wins over the parameter, which wins over Authorization
    assert reads(site, bearer(good), token="garbage") == 200
    assert reads(site, bearer("garbage"), token=good) == 498
    assert reads(site, {"Authorization": "Bearer garbage"}, token=good) == 200
    assert reads(site, {"Authorization": f"Bearer {good}"}, token="garbage") == 498


# -- invalid tokens: 498 ---------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_expired_token(site: Running) -> None:
    user = site.ctx.users.get_user("viewer")
    token = site.ctx.signer.issue(
        TokenClaims("viewer", "user", now_ms() - 1000, "none", "", user.token_epoch)
    )
    err = error(site.client.get(SEC, params={"f": "json"}, headers=bearer(token)))
    assert err["code"] == 498 and err["message"] == "Invalid Token"


def test_forged_tokens(site: Running) -> None:
    token = site.token("viewer")
    prefix, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["r"] = "administrator"
    tampered_payload = f"{prefix}.{_b64(json.dumps(claims).encode())}.{signature}"
    tampered_signature = (
        f"{prefix}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    )
    for forged in (tampered_payload, tampered_signature, "lm1.abc.def", "not-a-token"):
        assert reads(site, bearer(forged)) == 498, forged
    # a token signed with another secret
    from livemosaic.core.security import TokenSigner

    other = TokenSigner(b"x" * 32).issue(
        TokenClaims("admin", "administrator", now_ms() + 60_000, "none", "", 0)
    )
    assert reads(site, bearer(other)) == 498


def test_revoked_by_password_change_and_removed_user(site: Running) -> None:
    token = sign_in(site.client, "pub2")
    assert reads(site, bearer(token)) == 200
    users = site.ctx.users
    user = users.get_user("pub2")
    users.save_user(replace(user, token_epoch=user.token_epoch + 1))  # what `user passwd` does
    assert reads(site, bearer(token)) == 498
    fresh = sign_in(site.client, "pub2")
    assert reads(site, bearer(fresh)) == 200
    users.save_user(replace(users.get_user("pub2"), disabled=True))
    assert reads(site, bearer(fresh)) == 498
    users.save_user(replace(users.get_user("pub2"), disabled=False))
    assert reads(site, bearer(fresh)) == 200


def test_referer_binding(site: Running) -> None:
    # py: generates with referer=http and sends "Referer: http" afterwards
    py_token = sign_in(site.client, "viewer", client="referer", referer="http")
    assert reads(site, {**bearer(py_token), "Referer": "http"}) == 200
    assert reads(site, bearer(py_token)) == 498  # strict: no Referer
    app = sign_in(site.client, "viewer", client="referer", referer="https://app.example.org")
    assert reads(site, {**bearer(app), "Referer": "https://app.example.org/map.html"}) == 200
    assert reads(site, {**bearer(app), "Referer": "https://evil.example.org/page"}) == 498
    spelled = sign_in(site.client, "viewer", client="referrer", referrer="https://app.example.org")
    assert reads(site, {**bearer(spelled), "Referer": "https://app.example.org/"}) == 200
    for evil in (
        "https://app.example.org.evil.net/",
        "https://app.example.org@evil.net/",
        "https://app.example.org:8443/",
        "http://app.example.org/",
    ):
        assert reads(site, {**bearer(app), "Referer": evil}) == 498, evil
    # without a Referer, a browser's Origin header stands in (origins compared)
    assert reads(site, {**bearer(app), "Origin": "https://app.example.org"}) == 200
    assert reads(site, {**bearer(app), "Origin": "https://app.example.org.evil.net"}) == 498
    # a path-bound token: the Referer must be that page or below it
    path = sign_in(site.client, "viewer", client="referer", referer="https://a.example.org/app")
    assert reads(site, {**bearer(path), "Referer": "https://a.example.org/app/map.html"}) == 200
    assert reads(site, {**bearer(path), "Referer": "https://a.example.org/application"}) == 498
    # py's bare "http" binds only the scheme
    assert reads(site, {**bearer(py_token), "Referer": "http://anywhere.example.net/"}) == 200
    assert reads(site, {**bearer(py_token), "Referer": "https://anywhere.example.net/"}) == 498


def test_ip_binding(site: Running) -> None:
    here = sign_in(site.client, "viewer", client="requestip")
    assert reads(site, bearer(here)) == 200
    elsewhere = sign_in(site.client, "viewer", client="ip", ip="10.9.8.7")
    assert reads(site, bearer(elsewhere)) == 498
    # through a trusted proxy (127.0.0.1) the client address is X-Forwarded-For's
    assert reads(site, {**bearer(elsewhere), "X-Forwarded-For": "10.9.8.7"}) == 200


# -- rest/info, forwarded headers, plain HTTP ------------------------------------------------
def test_rest_info_auth_info(site: Running) -> None:
    info = site.client.get(f"{ROOT}/rest/info", params={"f": "json"}).json()
    assert "owningSystemUrl" not in info
    assert info["authInfo"] == {
        "isTokenBasedSecurity": True,
        "tokenServicesUrl": f"{site.base}{ROOT}/tokens/generateToken",
        "shortLivedTokenValidity": 60,
    }
    proxied = site.client.get(
        f"{ROOT}/rest/info",
        params={"f": "json"},
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "img.example.org"},
    ).json()
    assert (
        proxied["authInfo"]["tokenServicesUrl"]
        == "https://img.example.org/arcgis/tokens/generateToken"
    )


def test_forwarded_headers_from_untrusted_peers_are_ignored(
    shared_data: Path, tmp_path: Path
) -> None:
    ctx = build_site(tmp_path, shared_data, trusted_proxies=[])
    with running(ctx) as other:
        info = other.client.get(
            f"{ROOT}/rest/info",
            params={"f": "json"},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "img.example.org"},
        ).json()
        assert info["authInfo"]["tokenServicesUrl"] == f"{other.base}{ROOT}/tokens/generateToken"


def test_credentials_over_plain_http_to_a_remote_host_are_refused(site: Running) -> None:
    remote = {"Host": "img.example.org"}
    form = {"username": "viewer", "password": PASSWORDS["viewer"], "f": "json"}
    err = error(site.client.post(TOKENS, data=form, headers=remote))
    assert err["code"] == 403
    text = " ".join(err["details"])  # type: ignore[arg-type]
    assert "HTTPS" in str(err["message"]) and "LIVEMOSAIC_ALLOW_HTTP_CREDENTIALS" in text
    token = site.token("viewer")
    err = error(site.client.get(SEC, params={"f": "json"}, headers={**remote, **bearer(token)}))
    assert err["code"] == 403
    # anonymous requests to public services are fine over HTTP
    assert (
        site.client.get(
            f"{ROOT}/rest/services/pub/ImageServer", params={"f": "json"}, headers=remote
        ).json()["name"]
        == "pub"
    )
    # a TLS proxy in front (trusted, says https): accepted, and the token must stay on HTTPS
    tls = {**remote, "X-Forwarded-Proto": "https"}
    body = site.client.post(TOKENS, data=form, headers=tls).json()
    assert body["ssl"] is True
    assert reads(site, {**tls, **bearer(body["token"])}) == 200


def test_allow_http_credentials(shared_data: Path, tmp_path: Path) -> None:
    ctx = build_site(tmp_path, shared_data, allow_http_credentials=True)
    with running(ctx) as other:
        r = other.client.post(
            TOKENS,
            data={"username": "viewer", "password": PASSWORDS["viewer"], "f": "json"},
            headers={"Host": "img.example.org"},
        )
        assert "token" in r.json()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_serve_https(shared_data: Path, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
         str(cert), "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    data_dir = prepare_site(tmp_path / "site", shared_data)
    server = ServeProcess(
        data_dir,
        shared_data,
        tmp_path / "serve.log",
        "--certfile",
        str(cert),
        "--keyfile",
        str(key),
    )
    try:
        server.wait_ready(scheme="https")
        base = f"https://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, verify=False, timeout=30) as c:
            info = c.get(f"{ROOT}/rest/info", params={"f": "json"}).json()
            assert info["authInfo"]["tokenServicesUrl"] == f"{base}{ROOT}/tokens/generateToken"
            # over HTTPS credentials are accepted whatever the host
            body = c.post(
                TOKENS,
                data={"username": "viewer", "password": PASSWORDS["viewer"], "f": "json"},
                headers={"Host": "img.example.org"},
            ).json()
            assert body["ssl"] is True
            sec = c.get(SEC, params={"f": "json"}, headers=bearer(body["token"])).json()
            assert sec["name"] == "sec"
    finally:
        server.stop()
