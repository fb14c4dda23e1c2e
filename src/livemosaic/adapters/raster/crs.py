"""CRS keys and a quiet GDAL environment, shared by the raster adapters.

CRS keys are strings: ``EPSG:n`` when an EPSG code exists, ``ESRI:n`` for Esri-only codes
(54030 Robinson, 102003 …), otherwise WKT (GDAL's WKT1 flavour).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import cast

import rasterio
import rasterio.env
from rasterio.crs import CRS
from rasterio.errors import CRSError

from livemosaic.core.models import WEB_MERCATOR_ALIASES

# GDAL messages reach Python logging through rasterio; without this handler an application
# that has not configured logging would see them on stderr (logging's "last resort").
logging.getLogger("rasterio").addHandler(logging.NullHandler())


@contextlib.contextmanager
def quiet_env() -> Iterator[None]:
    """A rasterio environment (GDAL messages go to logging, not stderr) unless one is active."""
    if rasterio.env.hasenv():
        yield
        return
    with rasterio.Env():
        yield


def keep_thread_env() -> None:
    """Open a rasterio environment for the rest of the calling thread's life (the read
    threads' initializer): every read, open and warp on the thread then finds one active
    instead of setting one up and tearing it down, which cost about 2 % of a small image."""
    if not rasterio.env.hasenv():
        rasterio.Env().__enter__()


def esri_range(code: int) -> bool:
    """True for codes in the Esri-only ranges (37xxx, 53xxx/54xxx, 102xxx–104xxx)."""
    return 37000 <= code < 38000 or 53000 <= code < 55000 or code >= 100000


@lru_cache(maxsize=1)
def _cpl_error_reset() -> Callable[[], None] | None:
    """GDAL's ``CPLErrorReset`` from the GDAL that rasterio loaded (None if not found)."""
    folder = Path(rasterio.__file__).parent
    candidates = sorted(folder.parent.glob(folder.name + ".libs/libgdal*.so*"))
    name = str(candidates[0]) if candidates else ctypes.util.find_library("gdal")
    if not name:
        return None
    try:
        function = ctypes.CDLL(name).CPLErrorReset
    except (OSError, AttributeError):
        return None
    function.restype = None
    return cast(Callable[[], None], function)


@contextlib.contextmanager
def no_stale_gdal_error() -> Iterator[None]:
    """Clear GDAL's per-thread "last error" when a CRS lookup fails.

    A failed lookup (an unknown wkid a client sent) leaves CE_Failure as the thread's last
    GDAL error; a later read on the same pool thread would report it as its own failure
    (an item silently skipped, a wrong NoData). Resetting it keeps requests independent.
    """
    try:
        yield
    except CRSError:
        reset = _cpl_error_reset()
        if reset is not None:
            reset()
        raise


@lru_cache(maxsize=512)
def crs_from_key(key: str) -> CRS:
    """A rasterio CRS for a key ("EPSG:n", "ESRI:n", WKT, PROJ string); CRSError if unknown."""
    text = key.strip()
    with quiet_env(), no_stale_gdal_error():
        if text.upper().startswith("EPSG:") and text[5:].strip().isdigit():
            code = int(text[5:])
            if code in WEB_MERCATOR_ALIASES:
                return CRS.from_epsg(3857)
            if esri_range(code):
                return CRS.from_user_input(f"ESRI:{code}")
            return CRS.from_epsg(code)
        return CRS.from_user_input(text)


def authority(crs: CRS) -> tuple[str, int] | None:
    """(authority name, code) of a CRS when PROJ identifies one."""
    with quiet_env():
        try:
            with no_stale_gdal_error():
                auth = crs.to_authority()
        except CRSError:
            return None
    if not auth or not str(auth[1]).isdigit():
        return None
    return str(auth[0]).upper(), int(auth[1])


def crs_key(crs: CRS) -> str:
    """The key of a CRS: "EPSG:n" when an EPSG code is found, else "ESRI:n", else WKT."""
    with quiet_env():
        return _key_for_wkt(str(crs.to_wkt()))


@lru_cache(maxsize=512)
def _key_for_wkt(wkt: str) -> str:
    """Identifying a CRS without an authority code is slow in PROJ: cache it per WKT."""
    crs = CRS.from_wkt(wkt)
    with quiet_env():
        auth = authority(crs)
        if auth is not None and auth[0] == "ESRI":
            return f"ESRI:{auth[1]}"
        code = crs.to_epsg()
        if code is not None:
            return f"EPSG:{code}"
        return wkt


@lru_cache(maxsize=512)
def key_of(key: str) -> str:
    """Normalise a CRS key (web mercator aliases folded, WKT canonicalised); CRSError if bad."""
    return crs_key(crs_from_key(key))


@lru_cache(maxsize=1024)
def same_crs(a: str, b: str) -> bool:
    """True when two keys name the same CRS."""
    if a == b:
        return True
    try:
        return bool(crs_from_key(a) == crs_from_key(b))
    except CRSError:
        return False
