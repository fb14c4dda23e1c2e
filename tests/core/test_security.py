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
