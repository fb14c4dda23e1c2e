"""The sign-in throttle's policy, over the in-memory store of tests/core/fakes.py."""

from __future__ import annotations

import pytest

from livemosaic.core.signin import SigninThrottle
from tests.core.fakes import InMemorySigninAttempts


def test_window_slides_per_user_and_address() -> None:
    now = [1000.0]
    throttle = SigninThrottle(InMemorySigninAttempts(), 2, 60, clock=lambda: now[0])
    assert throttle.begin("ops", "10.0.0.1") == 0  # counted before the password is checked
    now[0] += 10
    assert throttle.begin("ops", "10.0.0.1") == 0
    assert throttle.begin("ops", "10.0.0.1") == pytest.approx(50)  # until the first is 60 s old
    assert throttle.begin("ops", "10.0.0.2") == 0  # per user and address
    assert throttle.begin("dev", "10.0.0.1") == 0
    now[0] += 50.5
    assert throttle.begin("ops", "10.0.0.1") == 0  # one attempt left the window
    assert throttle.begin("ops", "10.0.0.1") > 0
    throttle.succeeded("ops", "10.0.0.1")  # a good sign-in forgets the failures
    assert throttle.begin("ops", "10.0.0.1") == 0


def test_refused_attempts_are_not_counted() -> None:
    now = [0.0]
    throttle = SigninThrottle(InMemorySigninAttempts(), 1, 30, clock=lambda: now[0])
    assert throttle.begin("ops", "a") == 0
    for _ in range(5):  # hammering while refused does not push the window further
        now[0] += 5
        assert throttle.begin("ops", "a") > 0
    now[0] = 30.5
    assert throttle.begin("ops", "a") == 0
