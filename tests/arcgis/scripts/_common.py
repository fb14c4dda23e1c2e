"""Shared by the client scripts: connect with the real ArcGIS API for Python, run steps, print JSON.

These scripts run in the separate ``.venv-arcgis`` environment (not the livemosaic one), are
started by the tests as subprocesses and print exactly one JSON object on the last line of
stdout: ``{step: {"ok": true, "value": ...} | {"ok": false, "error": ..., "traceback": ...}}``.
A failing step never stops the others, so one run reports every incompatibility at once.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any


def plain(value: Any) -> Any:
    """A JSON-ready copy of what the client returned (PropertyMap, FeatureSet, numpy …)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "to_dict") and not hasattr(value, "keys"):  # FeatureSet
        return plain(value.to_dict())
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if hasattr(value, "keys"):
        return {str(k): plain(value[k]) for k in value.keys()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def connect(
    root: str, username: str | None = None, password: str | None = None, **kwargs: Any
) -> Any:
    """A ``ServicesDirectory`` on a plain-HTTP standalone server.

    ``all_ssl=False`` is required: the ``Connection`` behind it defaults to ``all_ssl=True`` and
    rewrites every ``http://`` URL to ``https://`` (arcgis/gis/_impl/_con/_connection.py, ``get``
    and ``post``), so without it the first catalog request fails and the constructor raises
    ``KeyError: 'folders'``.
    """
    from arcgis.gis.server import ServicesDirectory

    return ServicesDirectory(
        url=root, username=username, password=password, all_ssl=False, **kwargs
    )


class Steps:
    """Runs named steps, recording each result or failure."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run one step; returns its value (None when it failed)."""
        try:
            value = fn()
        except Exception as exc:  # every failure is reported; none stops the run
            self.results[name] = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=12),
            }
            return None
        self.results[name] = {"ok": True, "value": plain(value)}
        return value

    def emit(self) -> None:
        """Print the results as the last line of stdout."""
        sys.stdout.flush()
        print("\n" + json.dumps(self.results, default=str, allow_nan=True))
