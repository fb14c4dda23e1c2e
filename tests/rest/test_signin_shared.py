"""The failed sign-in throttle holds across server instances over one catalog.

Two real servers (uvicorn on 127.0.0.1, each with its own AppContext and connections, as
two worker processes have) over the same SQLite catalog: wrong passwords sent to both in
turn are checked ``signin_max_failures`` times in all, not that many times per server.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx

from livemosaic.app import build_context
from tests.figures import record
from tests.rest.secure import PASSWORDS, TOKENS, build_site, running

MAX_FAILURES = 3
ATTEMPTS = 12


def test_two_servers_share_one_count(shared_data: Path, tmp_path: Path) -> None:
    first = build_site(tmp_path, shared_data, signin_max_failures=MAX_FAILURES)
    second = build_context(first.settings)  # the same catalog file, its own connections
    with running(first) as a, running(second) as b:
        codes = []
        for i in range(ATTEMPTS):
            site = (a, b)[i % 2]
            r = site.client.post(
                TOKENS, data={"username": "admin", "password": "wrong-1", "f": "json"}
            )
            codes.append(r.json()["error"]["code"])
        checked = codes.count(400)  # the password was looked at (and was wrong)
        assert codes[:MAX_FAILURES] == [400] * MAX_FAILURES, codes
        assert codes[MAX_FAILURES:] == [429] * (ATTEMPTS - MAX_FAILURES), codes
        # now even the right password is refused by either server, without being checked
        for site in (a, b):
            form = {"username": "admin", "password": PASSWORDS["admin"], "f": "json"}
            assert site.client.post(TOKENS, data=form).json()["error"]["code"] == 429
        # another user is not affected, and a good sign-in clears that user's failures
        form = {"username": "pub1", "password": "wrong-1", "f": "json"}
        assert b.client.post(TOKENS, data=form).json()["error"]["code"] == 400
        form["password"] = PASSWORDS["pub1"]
        assert "token" in a.client.post(TOKENS, data=form).json()
        with first.catalog.pool.read() as conn:  # type: ignore[attr-defined]
            left = conn.execute(
                "SELECT COUNT(*) FROM signin_attempts WHERE username = 'pub1'"
            ).fetchone()[0]
        assert left == 0
    record(
        "signin_throttle_servers",
        servers=2,
        max_failures=MAX_FAILURES,
        attempts=ATTEMPTS,
        passwords_checked=checked,
        per_process_would_allow=2 * MAX_FAILURES,
    )


def test_concurrent_attempts_cannot_slip_past(shared_data: Path, tmp_path: Path) -> None:
    max_failures = 1  # counted before the password is checked, so parallel tries count too
    ctx = build_site(tmp_path, shared_data, signin_max_failures=max_failures)
    with running(ctx) as site:
        form = {"username": "viewer", "password": "wrong-2", "f": "json"}

        def attempt(_: int) -> int:
            with httpx.Client(base_url=site.base, timeout=60) as c:
                return int(c.post(TOKENS, data=form).json()["error"]["code"])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(attempt, range(8)))
    assert sorted(codes) == [400] * max_failures + [429] * (8 - max_failures), codes
