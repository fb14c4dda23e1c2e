"""Refresh Service through ``import_toolbox`` (spec 8.7.5, 11 item 3).

Usage: refresh_toolbox.py ROOT_URL SERVICE FOLDER [USERNAME PASSWORD]

Signs in (when credentials are given) through a ServicesDirectory, imports the
``System/PublishingTools`` toolbox with that connection, runs ``refresh_service`` once
directly and once with ``future=True``, then reads the service info again.
"""

from __future__ import annotations

import sys
from typing import Any

from _common import Steps, connect


def main(root: str, service: str, folder: str, username: str | None, password: str | None) -> None:
    """Sign in, import the toolbox, run Refresh Service twice, re-read the service.

    The generated ``refresh_service`` does not use the toolbox's connection: its ``gis``
    defaults to ``arcgis.env.active_gis`` (None without a portal GIS), which submits the job
    anonymously; the connection is passed explicitly.
    """
    steps = Steps()
    # The Connection guesses https://<host>/<root>/admin/generateToken for a SERVER product
    # (_connection.py, _check_product); EsriGenTokenAuth keeps only the root of the URL it is
    # given and reads authInfo.tokenServicesUrl from <root>/rest/info, so any http URL on the
    # server will do. Without token_url it probes https:// on a plain-HTTP port and fails.
    extra = {"token_url": f"{root}/tokens/generateToken"} if username else {}
    sd = steps.run("connect", lambda: connect(root, username, password, **extra))
    if sd is None:
        steps.emit()
        return
    con = sd._con
    steps.run(
        "connection",
        lambda: {
            "auth": con._auth,
            "product": con._product,
            "token_url": getattr(con._session.auth, "_token_url", None),
        },
    )
    gp_url = f"{root}/rest/services/System/PublishingTools/GPServer"

    def load() -> Any:
        from arcgis.geoprocessing import import_toolbox

        # import_toolbox reads the GP service with raise_for_status() only, so an error
        # envelope becomes properties without executionType; it then calls itself again for
        # every error whose text lacks "token required" (_tool.py, import_toolbox): a refused
        # caller recurses until RecursionError. A low limit keeps that to a few requests.
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(200)
        try:
            return import_toolbox(gp_url, gis=con)
        finally:
            sys.setrecursionlimit(limit)

    tbx = steps.run("import_toolbox", load)
    steps.results.get("import_toolbox", {}).pop("value", None)  # a module: not JSON
    if tbx is not None:
        steps.run(
            "functions",
            lambda: sorted(
                n for n in dir(tbx) if not n.startswith("_") and callable(getattr(tbx, n))
            ),
        )
        steps.run("signature", lambda: str(__import__("inspect").signature(tbx.refresh_service)))
        steps.run(
            "refresh",
            lambda: tbx.refresh_service(
                service_name=service,
                service_type="ImageServer",
                service_folder=folder,
                refresh_options="",
                gis=con,
            ),
        )
        steps.run(
            "refresh_future",
            lambda: tbx.refresh_service(
                service_name=service,
                service_type="ImageServer",
                service_folder=folder,
                refresh_options="",
                gis=con,
                future=True,
            ).result(),
        )

        def properties() -> Any:
            from arcgis.raster import ImageryLayer

            qualified = f"{folder}/{service}" if folder else service
            layer = ImageryLayer(f"{root}/rest/services/{qualified}/ImageServer", gis=con)
            return {"extent": dict(layer.properties.extent), "name": layer.properties.name}

        steps.run("properties", properties)
    steps.emit()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], args[2], *(args[3:5] if len(args) >= 5 else (None, None)))
