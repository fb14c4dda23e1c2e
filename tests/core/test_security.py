"""Password hashing and signed tokens."""

from __future__ import annotations

import pytest

from livemosaic.core.security import (
    ANONYMOUS,
    InvalidToken,
    Principal,
    TokenClaims,
    TokenSigner,
    hash_password,
    referer_allowed,
    referer_matches,
    verify_password,
)


def test_password_hashes_are_salted_and_verify() -> None:
    a = hash_password("s3cret!")
    b = hash_password("s3cret!")
    assert a != b and a.startswith("scrypt$")
    assert "s3cret" not in a
    assert verify_password("s3cret!", a)
    assert not verify_password("s3cret?", a)
    assert not verify_password("s3cret!", "garbage")
    assert not verify_password("s3cret!", "md5$x$y$z$a$b")


def claims(**kw: object) -> TokenClaims:
    base = {
        "username": "ops",
        "role": "publisher",
        "expires": 2_000,
        "client": "none",
        "bound_to": "",
        "epoch": 0,
    }
    base.update(kw)
    return TokenClaims(**base)  # type: ignore[arg-type]


def test_tokens_round_trip_and_reject_forgery_and_expiry() -> None:
    signer = TokenSigner(b"k" * 32)
    token = signer.issue(claims())
    assert token.startswith("lm1.")
    assert all(c.isalnum() or c in "-_." for c in token)
    got = signer.verify(token, now=1_000)
    assert (got.username, got.role, got.expires) == ("ops", "publisher", 2_000)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token, now=2_000)
    head, payload, sig = token.split(".")
    forged_payload = TokenSigner(b"k" * 32).issue(claims(role="administrator")).split(".")[1]
    with pytest.raises(InvalidToken, match="signature"):
        signer.verify(f"{head}.{forged_payload}.{sig}", now=1_000)
    with pytest.raises(InvalidToken):
        TokenSigner(b"x" * 32).verify(token, now=1_000)
    for bad in ("", "abc", "lm1.a", "lm2.a.b", token + "x"):
        with pytest.raises(InvalidToken):
            signer.verify(bad, now=1_000)


def test_roles_rank() -> None:
    assert not ANONYMOUS.at_least("user")
    assert Principal("a", "administrator").at_least("publisher")
    assert Principal("p", "publisher").at_least("publisher")
    assert not Principal("u", "user").at_least("publisher")


def test_referer_binding() -> None:
    assert referer_matches("http", "http", "strict")
    assert referer_matches("https://app.example.org", "https://app.example.org/map.html", "strict")
    assert not referer_matches("https://app.example.org", "https://evil.example.com/", "strict")
    assert not referer_matches("https://app.example.org", None, "strict")
    assert referer_matches("https://app.example.org", "https://evil.example.com/", "lenient")
    assert referer_matches("x", "y", "off")


GOOD = "https://good.example.org"


@pytest.mark.parametrize(
    "referer",
    [
        "https://good.example.org",
        "https://good.example.org/",
        "https://good.example.org/map.html?x=1#y",
        "https://GOOD.example.org/app/",  # host names are case-insensitive
        "https://good.example.org:443/page",  # the default port, spelled out
        "https://good.example.org./page",  # the fully-qualified spelling
    ],
)
def test_referer_of_the_bound_origin_is_accepted(referer: str) -> None:
    assert referer_allowed(GOOD, referer)


@pytest.mark.parametrize(
    "referer",
    [
        "https://good.example.org.evil.net/",  # a longer host name (was a prefix match)
        "https://good.example.org@evil.net/",  # user info: the host is evil.net
        "https://good.example.org:8443/",  # another port
        "http://good.example.org/",  # another scheme
        "https://evil.net/https://good.example.org",
        "https://evil.net/?https://good.example.org",
        "https://good.example.org:99999/",  # not a port
        "good.example.org",  # not a URL
        "https",  # py's bare scheme binds nothing to a URL-bound token
        "",
        None,
    ],
)
def test_referer_of_another_origin_is_refused(referer: str | None) -> None:
    assert not referer_allowed(GOOD, referer)
    assert not referer_matches(GOOD, referer, "strict")


def test_default_ports_are_normalised_both_ways() -> None:
    assert referer_allowed("https://a.org:443", "https://a.org/x")
    assert referer_allowed("http://a.org", "http://a.org:80/x")
    assert not referer_allowed("http://a.org", "http://a.org:8080/x")
    assert referer_allowed("http://a.org:8080/app", "http://a.org:8080/app/page")


def test_paths_match_on_segment_boundaries() -> None:
    bound = "https://a.org/app"
    for ok in ("https://a.org/app", "https://a.org/app/", "https://a.org/app/map.html"):
        assert referer_allowed(bound, ok), ok
    for bad in ("https://a.org/application", "https://a.org/ap", "https://a.org/", "https://a.org"):
        assert not referer_allowed(bound, bad), bad
    assert referer_allowed("https://a.org/app/", "https://a.org/app/x")  # trailing slash
    # an Origin header has no path: only the origin is compared (WebSocket handshakes)
    assert referer_allowed(bound, "https://a.org", origin_only=True)
    assert not referer_allowed(bound, "https://a.org.evil.net", origin_only=True)


def test_bare_scheme_referer_of_the_arcgis_api_for_python() -> None:
    # py generates with referer=http and sends "Referer: http": it binds only the scheme
    assert referer_allowed("http", "http")
    assert referer_allowed("http", "HTTP")
    assert referer_allowed("http", "http://anything.example.net/")
    assert not referer_allowed("http", "https://anything.example.net/")
    assert not referer_allowed("http", "https")
    assert not referer_allowed("http", "httpx://a.org/")
    assert referer_allowed("https", "https://a.org/")
    assert not referer_allowed("https", "http")


def test_non_url_referers_must_be_sent_back_exactly() -> None:
    bound = "app://arcgis-maps/com.example.viewer"
    assert referer_allowed(bound, bound)
    assert not referer_allowed(bound, bound + ".evil")
    assert not referer_allowed("myapp", "myapp2")
