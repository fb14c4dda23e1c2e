"""TiTiler as a user would run it for a mosaic of COGs: MosaicJSON, with the bbox endpoint.

Runs in the peers' virtualenv (``scripts/install-peers``), not livemosaic's:

    .venv-peers/bin/uvicorn titiler_app:app --app-dir bench/peers --workers 2
"""

from cogeo_mosaic.backends import MosaicBackend
from fastapi import FastAPI
from titiler.mosaic.factory import MosaicTilerFactory

app = FastAPI(title="TiTiler MosaicJSON (livemosaic benchmark)")
mosaic = MosaicTilerFactory(backend=MosaicBackend, add_part=True, router_prefix="/mosaic")
app.include_router(mosaic.router, prefix="/mosaic")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
