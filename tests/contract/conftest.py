"""The ``stores`` fixture: each contract test runs once per store implementation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.stores import IMPLEMENTATIONS, Implementation, StoreSet, skip_reason


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda impl: impl.name)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreSet]:
    """Fresh, empty stores of one implementation."""
    impl: Implementation = request.param
    reason = skip_reason(impl)
    if reason is not None:
        if os.environ.get("CI"):  # CI provides every store (scripts/test starts PostgreSQL)
            pytest.fail(f"the {impl.name} store cannot run under CI: {reason}")
        pytest.skip(reason)
    with impl.open(tmp_path) as opened:
        yield opened
