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


def table(path: str) -> str:
    """The figures of a figures file as a Markdown table, one row per record (last run first)."""
    rows: list[dict[str, object]] = []
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    lines = ["| figure | values | at |", "|---|---|---|"]
    for row in rows:
        name, at = row.pop("figure"), row.pop("at")
        values = ", ".join(f"{key}={value}" for key, value in row.items())
        lines.append(f"| {name} | {values} | {at} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(table(sys.argv[1]))
