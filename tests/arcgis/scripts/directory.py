"""ServicesDirectory against a standalone livemosaic server (anonymous).

Usage: directory.py ROOT_URL       (e.g. http://127.0.0.1:8000/arcgis)
"""

from __future__ import annotations

import sys

from _common import Steps, connect


def main(root: str) -> None:
    """Connect anonymously, list folders and services, look services up by name."""
    steps = Steps()
    sd = steps.run("connect", lambda: connect(root))
    if sd is not None:
        con = sd._con
        steps.run(
            "connection",
            lambda: {"auth": con._auth, "product": con._product, "baseurl": con.baseurl},
        )
        steps.run("folders", lambda: list(sd.folders))
        steps.run("list_root", lambda: [[type(s).__name__, s.url] for s in sd.list()])
        steps.run("list_live", lambda: [[type(s).__name__, s.url] for s in sd.list(folder="Live")])
        steps.run("get_imagery", lambda: [type(sd.get("imagery")).__name__, sd.get("imagery").url])
        steps.run(
            "find_climate",
            lambda: [
                type(sd.find("climate", folder="Live")).__name__,
                sd.find("climate", folder="Live").url,
            ],
        )
        steps.run("get_missing", lambda: sd.get("no_such_service"))
    steps.emit()


if __name__ == "__main__":
    main(sys.argv[1])
