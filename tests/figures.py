"""Figures that the hardening tests measure, for docs/security.md.

A test calls ``record("name", key=value, ...)``; when ``LIVEMOSAIC_FIGURES`` names a file, one
JSON line is appended to it (``scripts/security-figures`` sets it, runs the tests and prints the
table). Without the variable nothing is written, so the tests run the same either way.
"""

from __future__ import annotations

import json
import os
import time


def record(name: str, **values: float | int | str | bool) -> None:
    """Append one measured figure (a name and its values) to the figures file, if any."""
    path = os.environ.get("LIVEMOSAIC_FIGURES")
    if not path:
        return
    line = json.dumps(
        {"figure": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **values}
    )
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
