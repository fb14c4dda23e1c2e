"""Confinement: GDAL reads nothing for an item outside the registered data folders.

:meth:`Confinement.check` runs before GDAL opens a dataset name and follows everything GDAL
would follow from it:

* a file: its real path (symlinks resolved) must lie inside the folders, and so must every
  sidecar GDAL looks for beside it (``.ovr``, ``.msk``, ``.aux.xml``, world files, headers, …);
  an ``.ovr``/``.msk`` must be a TIFF and an ``.aux``/``.rrd`` an Erdas HFA file (GDAL opens
  them as datasets of their own);
* ``/vsizip/``, ``/vsitar/``, ``/vsigzip/``, ``/vsisubfile/``: the archive file, and the
  content of the member(s) read through Python's own archive readers;
* what a file *is* is decided by its content, not its name: a VRT (also under a ``.tif``
  name) has every source checked, recursively (``SourceFilename``, ``SourceDataset``,
  ``relativeToVRT``, ``vrt://`` and ``NETCDF:``/``HDF5:`` strings, overviews, mask bands);
  raw bands (``VRTRawRasterBand``: GDAL opens their file for writing and reads any byte of
  it) and Python pixel functions are refused; a VRT source must itself be a VRT or a raster
  recognised by its first bytes (:data:`SOURCE_SIGNATURES`); any other XML or JSON
  description of a dataset is refused;
* network locations (``/vsicurl/``, ``/vsis3/``, ``http://`` …) and every other GDAL virtual
  file system are refused unless they start with an allowed object-store prefix.

GDAL then opens items only with the drivers of :data:`ALLOWED_DRIVERS` (no VRT for network
locations, whose sources cannot be checked first), and :meth:`Confinement.check_files` checks
GDAL's own list of the dataset's files after opening. :func:`gdal_config` adds GDAL
configuration options as a second line of defence.

A refusal is a :class:`~livemosaic.errors.RasterRejected` for the path the operator gave; its
reason says what kind of reference was refused, never where it pointed.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from rasterio._env import del_gdal_config
from rasterio.env import set_gdal_config

from livemosaic.core.folders import real_folders, resolve_inside
from livemosaic.core.ingest import GDAL_SIDECAR_SUFFIXES
from livemosaic.core.objects import object_inside
from livemosaic.errors import RasterRefused

# Every GDAL driver an item may be opened with: what the README promises (GeoTIFF/COG, JPEG
# 2000, NetCDF, GRIB1/2, HDF5, SRTM HGT, ESRI ASCII grid, RRASTER) plus plain image formats
# with world files, ENVI and GTX grids, and VRT (after the checks of this module).
ALLOWED_DRIVERS: tuple[str, ...] = (
    "GTiff",
    "COG",
    "JP2OpenJPEG",
    "netCDF",
    "GRIB",
    "HDF5",
    "HDF5Image",
    "SRTMHGT",
    "AAIGrid",
    "RRASTER",
    "ENVI",
    "GTX",
    "PNG",
    "JPEG",
    "VRT",
)
# Formats a VRT may name as a source, by their first bytes (offset, signature).
SOURCE_SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    "TIFF": ((0, b"II*\x00"), (0, b"MM\x00*"), (0, b"II+\x00"), (0, b"MM\x00+")),
    "JPEG 2000": ((0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"), (0, b"\xffO\xffQ")),
    "NetCDF": ((0, b"CDF\x01"), (0, b"CDF\x02"), (0, b"CDF\x05")),
    "HDF5": tuple((o, b"\x89HDF\r\n\x1a\n") for o in (0, 512, 1024, 2048)),
    "GRIB": ((0, b"GRIB"),),
    "PNG": ((0, b"\x89PNG\r\n\x1a\n"),),
    "JPEG": ((0, b"\xff\xd8\xff"),),
}
# Sidecars GDAL opens as datasets of their own, and what they must be.
SIDECAR_SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    ".ovr": SOURCE_SIGNATURES["TIFF"],
    ".msk": SOURCE_SIGNATURES["TIFF"],
    ".aux": ((0, b"EHFA_HEADER_TAG"),),
    ".rrd": ((0, b"EHFA_HEADER_TAG"),),
}
# Files GDAL looks for beside a raster (probed by name, also in upper case).
SIDECAR_SUFFIXES = GDAL_SIDECAR_SUFFIXES
ARCHIVES = ("/vsizip/", "/vsitar/", "/vsigzip/")
HEAD_BYTES = 4096
NO_NETWORK_EXTENSION = ".livemosaic-network-disabled"  # no file name ends like this
NEXT_STEP = (
    "Keep every file a raster uses (VRT sources, sidecars, archives) inside the registered "
    "data folders (LIVEMOSAIC_DATA_FOLDERS); network locations need an allowed prefix in "
    "LIVEMOSAIC_OBJECT_STORE_PREFIXES."
)
_SUBDATASET = re.compile(
    r'^(?P<driver>netcdf|hdf5):(?:"(?P<quoted>[^"]*)"|(?P<bare>[^:]*))(?::.*)?$', re.I
)
_CONNECTION = re.compile(r"^[A-Za-z][A-Za-z0-9_]*:")
_SUBFILE = re.compile(r"^(?P<offset>\d+)(?:_\d+)?,(?P<name>.+)$")


class _Refused(Exception):
    """Raised inside a check; becomes RasterRefused for the operator's path."""


def _refuse(what: str) -> _Refused:
    return _Refused(what)


@dataclass(frozen=True)
class Confinement:
    """The folders (real paths) and network prefixes rasters may be read from."""

    folders: tuple[Path, ...]
    object_store_prefixes: tuple[str, ...] = ()
    object_store_timeout_seconds: float = 30.0

    @classmethod
    def of(
        cls,
        folders: Iterable[str | os.PathLike[str]],
        object_store_prefixes: Iterable[str] = (),
        object_store_timeout_seconds: float = 30.0,
    ) -> Confinement:
        """A confinement to these folders (resolved now) and object-store prefixes."""
        prefixes = tuple(p if p.endswith("/") else p + "/" for p in object_store_prefixes)
        return cls(tuple(real_folders(folders)), prefixes, object_store_timeout_seconds)

    def is_remote(self, name: str) -> bool:
        """True when ``name`` lies under an allowed object-store prefix (core.objects rule)."""
        return object_inside(name, self.object_store_prefixes)

    def drivers(self, name: str) -> list[str]:
        """The GDAL drivers ``name`` may be opened with."""
        if self.is_remote(name):
            return [d for d in ALLOWED_DRIVERS if d != "VRT"]
        return list(ALLOWED_DRIVERS)

    def check(self, name: str, path: str) -> str:
        """Check a dataset name before GDAL opens it; the name to open.

        A plain file is opened by its real path (what was checked). Raises RasterRefused
        (for ``path``, the operator's path) when the dataset would read outside.
        """
        walk = _Walk(self)
        try:
            return walk.main(name)
        except _Refused as exc:
            raise RasterRefused(
                path, f"refused before opening: {exc}.", next_step=NEXT_STEP
            ) from None

    def check_files(self, files: Sequence[str], path: str) -> None:
        """Check GDAL's list of an open dataset's files (``ds.files``)."""
        for name in files:
            if self.is_remote(name):
                continue
            try:
                if name.startswith("/vsi"):
                    _Walk(self).archive_file(name)
                elif "://" in name:
                    raise _refuse("GDAL reads a network location")
                elif resolve_inside(name, self.folders) is None:
                    raise _refuse("GDAL reads a file outside the registered data folders")
            except _Refused as exc:
                raise RasterRefused(
                    path, f"refused after opening: {exc}.", next_step=NEXT_STEP
                ) from None


def gdal_config(confinement: Confinement) -> dict[str, str]:
    """GDAL configuration options that back the checks up (defence in depth).

    * ``GDAL_VRT_ENABLE_PYTHON=NO``: no Python code from VRT pixel functions.
    * ``CPL_VSIL_CURL_ALLOWED_EXTENSIONS``: without object-store prefixes, an extension no
      file has, so /vsicurl/, /vsis3/, /vsigs/, … refuse every name before any request.
    * ``GDAL_HTTP_TIMEOUT`` / ``GDAL_HTTP_CONNECTTIMEOUT``: bounded network reads.
    * ``GDAL_DISABLE_READDIR_ON_OPEN=TRUE``: GDAL probes the sidecar names it knows (which
      :meth:`Confinement.check` checks) instead of listing the raster's folder.
    """
    timeout = max(1, round(confinement.object_store_timeout_seconds))
    options = {
        "GDAL_VRT_ENABLE_PYTHON": "NO",
        "GDAL_HTTP_TIMEOUT": str(timeout),
        "GDAL_HTTP_CONNECTTIMEOUT": str(min(timeout, 10)),
        "GDAL_DISABLE_READDIR_ON_OPEN": "TRUE",
    }
    if not confinement.object_store_prefixes:
        options["CPL_VSIL_CURL_ALLOWED_EXTENSIONS"] = NO_NETWORK_EXTENSION
    return options


def apply_gdal_config(confinement: Confinement) -> None:
    """Set :func:`gdal_config` for the whole process: as GDAL configuration options (which
    win over the environment) and in the environment (for GDAL in child processes)."""
    options = gdal_config(confinement)
    for key, value in options.items():
        os.environ[key] = value
        set_gdal_config(key, value)
    if "CPL_VSIL_CURL_ALLOWED_EXTENSIONS" not in options:
        os.environ.pop("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", None)
        del_gdal_config("CPL_VSIL_CURL_ALLOWED_EXTENSIONS")


def _matches(head: bytes, signatures: Iterable[tuple[int, bytes]]) -> bool:
    return any(head[o : o + len(sig)] == sig for o, sig in signatures)


def _is_vrt(head: bytes) -> bool:
    """GDAL's VRT test: ``<VRTDataset`` in the header before its first NUL byte."""
    text = head.split(b"\x00", 1)[0].lower()
    return b"<vrtdataset" in text


def _is_description(head: bytes) -> bool:
    """XML or JSON text: a description of another dataset (tile index, WMS, STAC, NcML, …).

    (RRASTER headers start with ``[georeference]``: not JSON.)
    """
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text[:1] in (b"<", b"{"):
        return True
    return text[:1] == b"[" and text[1:].lstrip()[:1] in (b"{", b"[", b'"', b"]")


@dataclass
class _Walk:
    """One check: the files seen so far (each checked once, cycles end)."""

    conf: Confinement
    seen: set[str] = field(default_factory=set)

    # -- names ---------------------------------------------------------------------------
    def main(self, name: str) -> str:
        """The item's own dataset name: what GDAL opens with the allowed drivers."""
        if self.conf.is_remote(name):
            return name
        self._plain(name)
        if not name.startswith("/vsi") and "://" not in name and not _CONNECTION.match(name):
            real = self.file(os.path.abspath(name), nested=False)
            return str(real)
        self.name(name, (os.getcwd(),), nested=False)
        return name

    def name(self, name: str, roots: tuple[str, ...], *, nested: bool) -> None:
        """Any dataset name as GDAL would open it; a relative name is looked for in each of
        ``roots`` (the working folder, the folder of the VRT naming it, or both)."""
        self._plain(name)
        if self.conf.is_remote(name):
            return
        low = name.lower()
        wider = tuple(dict.fromkeys((*roots, os.getcwd())))  # GDAL's handling differs by version
        if low.startswith("vrt://"):
            self.name(name[6:].split("?", 1)[0], wider, nested=True)
            return
        if low.startswith("/vsi"):
            self.vsi(name, wider, nested=nested)
            return
        if "://" in name:
            raise _refuse("it reads a network location, and no object-store prefix allows it")
        sub = _SUBDATASET.match(name)
        if sub is not None:
            inner = sub["quoted"] if sub["quoted"] is not None else sub["bare"]
            self.name(inner, wider, nested=nested)
            return
        if _CONNECTION.match(name):
            raise _refuse("a connection string of a GDAL driver livemosaic does not open")
        for candidate in self._candidates(name, roots):
            if candidate.startswith("/vsi"):  # relative to a VRT inside an archive
                self.vsi(candidate, (os.getcwd(),), nested=nested)
            else:
                self.file(candidate, nested=nested)

    @staticmethod
    def _plain(name: str) -> None:
        """Names that GDAL could read differently from this check are refused."""
        if not name or name != name.strip() or any(ord(c) < 32 for c in name):
            raise _refuse("a dataset name with surrounding spaces or control characters")
        if "<" in name:
            raise _refuse("an inline XML dataset")

    @staticmethod
    def _candidates(name: str, roots: tuple[str, ...]) -> list[str]:
        """Where GDAL may look for ``name``: absolute as is, relative in each root."""
        if os.path.isabs(name):
            return [name]
        return [os.path.join(root, name) for root in roots]

    @staticmethod
    def _roots(relative: str | None, folder: str) -> tuple[str, ...]:
        """Roots of a VRT source by its ``relativeToVRT`` value ("0"/absent: the working
        folder, "1": the VRT's folder, anything else: both must hold)."""
        value = None if relative is None else relative.strip()
        if value in (None, "0"):
            return (os.getcwd(),)
        if value == "1":
            return (folder,)
        return (os.getcwd(), folder)

    # -- local files ---------------------------------------------------------------------
    def file(self, path: str, *, nested: bool) -> Path:
        """A local file: inside the folders (real and lexical path), sidecars, content."""
        real = self._inside(path, "a file outside the registered data folders")
        key = str(real)
        if key in self.seen:
            return real
        self.seen.add(key)
        if real.is_dir():
            raise _refuse("a folder, not a file")
        if not real.exists():
            return real  # GDAL fails to open it; nothing is read
        opened = path if nested else str(real)  # the name GDAL opens (its folder, its sidecars)
        self.sidecars(opened)
        with open(real, "rb") as fh:
            head = fh.read(HEAD_BYTES)
        self.content(head, lambda: real.read_bytes(), os.path.dirname(opened), nested=nested)
        return real

    def _inside(self, path: str, what: str) -> Path:
        real = None
        for candidate in dict.fromkeys((path, os.path.normpath(path))):
            real = resolve_inside(candidate, self.conf.folders)
            if real is None:
                raise _refuse(what)
        assert real is not None
        return real

    def sidecars(self, path: str) -> None:
        """The files GDAL probes beside ``path`` must be inside, and be what GDAL expects."""
        stem = os.path.splitext(path)[0]
        for base in dict.fromkeys((path, stem)):
            for suffix in SIDECAR_SUFFIXES:
                for variant in (suffix, suffix.upper()):
                    candidate = base + variant
                    if not os.path.lexists(candidate):
                        continue
                    real = self._inside(
                        candidate, "a sidecar file outside the registered data folders"
                    )
                    signatures = SIDECAR_SIGNATURES.get(suffix)
                    if signatures is None or str(real) in self.seen or not real.is_file():
                        continue
                    self.seen.add(str(real))
                    with open(real, "rb") as fh:
                        head = fh.read(HEAD_BYTES)
                    if not _matches(head, signatures):
                        raise _refuse(
                            f"a {suffix} sidecar that is not the kind of file GDAL expects"
                        )
                    self.sidecars(candidate)

    # -- content -------------------------------------------------------------------------
    def content(
        self, head: bytes, read_all: Callable[[], bytes], folder: str, *, nested: bool
    ) -> None:
        """What the bytes are decides what GDAL follows."""
        if _is_vrt(head):
            self.vrt(read_all(), folder)
            return
        if _is_description(head):
            raise _refuse("an XML or JSON description of another dataset (only VRT is accepted)")
        if nested and not any(_matches(head, sigs) for sigs in SOURCE_SIGNATURES.values()):
            raise _refuse("a VRT source in a format livemosaic does not accept as a source")

    def vrt(self, data: bytes, folder: str) -> None:
        """Every source of a VRT, recursively; raw bands and Python code refused."""
        try:
            root = ElementTree.fromstring(data)
        except ElementTree.ParseError:
            raise _refuse("a VRT that cannot be parsed") from None
        if not isinstance(root.tag, str) or root.tag.lower() != "vrtdataset":
            raise _refuse("a VRT that cannot be parsed")
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            tag = element.tag.lower()
            attrs = {k.lower(): v for k, v in element.attrib.items()}
            if attrs.get("subclass", "").strip().lower() == "vrtrawrasterband":
                raise _refuse("a raw VRT band (VRTRawRasterBand)")
            if tag == "pixelfunctionlanguage" and (element.text or "").strip().lower() == "python":
                raise _refuse("a VRT pixel function in Python")
            if tag in ("sourcefilename", "sourcedataset"):
                roots = self._roots(attrs.get("relativetovrt"), folder)
                self.name(element.text or "", roots, nested=True)

    # -- virtual file systems ------------------------------------------------------------
    def vsi(self, name: str, roots: tuple[str, ...], *, nested: bool) -> None:
        """``/vsizip/``, ``/vsitar/``, ``/vsigzip/``, ``/vsisubfile/``; others refused."""
        end = name.find("/", 1)
        handler = name[: end + 1] if end > 0 else name
        rest = name[len(handler) :]
        if handler == "/vsisubfile/":
            match = _SUBFILE.match(rest)
            if match is None:
                raise _refuse("a /vsisubfile/ name that cannot be checked")
            inner = match["name"]
            if inner.startswith("/vsi") or "://" in inner:
                raise _refuse("a virtual file inside another virtual file system")
            for candidate in self._candidates(inner, roots):
                real = self._inside(candidate, "a file outside the registered data folders")
                if real.is_file():
                    with open(real, "rb") as fh:
                        fh.seek(int(match["offset"]))
                        head = fh.read(HEAD_BYTES)
                    # a VRT must fit in the first bytes of the region
                    self.content(
                        head,
                        functools.partial(bytes, head),
                        os.path.dirname(candidate),
                        nested=True,
                    )
            return
        if handler not in ARCHIVES:
            raise _refuse(
                "it reads a network location or GDAL virtual file system, and no "
                "object-store prefix allows it"
            )
        if rest.startswith("/vsi") or "://" in rest:
            raise _refuse("an archive inside another virtual file system")
        braced = rest.startswith("{")
        inner = rest[1:] if braced else rest
        for candidate in self._candidates(inner, roots):
            archive, member = self._split_archive(handler, "{" + candidate if braced else candidate)
            real = self._inside(archive, "an archive outside the registered data folders")
            if real.is_file():  # else GDAL fails to open it
                self.members(handler, real, member, handler + candidate, nested=nested)

    def archive_file(self, name: str) -> Path:
        """The archive (or file) behind a /vsi… name of GDAL's file list, checked inside."""
        end = name.find("/", 1)
        handler = name[: end + 1] if end > 0 else name
        if handler not in (*ARCHIVES, "/vsisubfile/"):
            raise _refuse("GDAL reads a network location or virtual file system")
        rest = name[len(handler) :]
        if handler == "/vsisubfile/":
            match = _SUBFILE.match(rest)
            if match is None:
                raise _refuse("GDAL reads a virtual file that cannot be checked")
            rest = match["name"]
            return self._inside(rest, "GDAL reads a file outside the registered data folders")
        archive, _ = self._split_archive(handler, rest)
        return self._inside(archive, "GDAL reads an archive outside the registered data folders")

    @staticmethod
    def _split_archive(handler: str, rest: str) -> tuple[str, str]:
        """(archive path, member) of the part after the handler (an absolute path)."""
        if rest.startswith("/vsi") or "://" in rest:
            raise _refuse("an archive inside another virtual file system")
        if rest.startswith("{"):
            archive, _, member = rest[1:].partition("}")
            return archive, member.lstrip("/")
        if handler == "/vsigzip/":
            return rest, ""
        parts = rest.split("/")
        for i in range(2, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if os.path.isfile(prefix):
                return prefix, "/".join(parts[i:])
        return rest, ""

    def members(self, handler: str, real: Path, member: str, name: str, *, nested: bool) -> None:
        """The content of the archive member(s) GDAL would open."""
        folder = name if not member else name.rsplit("/", 1)[0]
        try:
            for head, read_all in _archive_heads(handler, real, member):
                self.content(head, read_all, folder, nested=nested)
        except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, KeyError):
            raise _refuse("an archive that cannot be read") from None


def _archive_heads(
    handler: str, real: Path, member: str
) -> list[tuple[bytes, Callable[[], bytes]]]:
    """First bytes (and a reader of everything) of the member, or of every member."""
    out: list[tuple[bytes, Callable[[], bytes]]] = []
    if handler == "/vsigzip/":
        with gzip.open(real, "rb") as gz:
            head = gz.read(HEAD_BYTES)
        out.append((head, functools.partial(_gzip_read, real)))
    elif handler == "/vsizip/":
        with zipfile.ZipFile(real) as zf:
            names = [member] if member else [i.filename for i in zf.infolist() if not i.is_dir()]
            for n in names:
                with zf.open(n) as member_fh:
                    head = member_fh.read(HEAD_BYTES)
                out.append((head, functools.partial(_zip_read, real, n)))
    else:
        with tarfile.open(real) as tf:
            infos = [tf.getmember(member)] if member else [i for i in tf.getmembers() if i.isfile()]
            for info in infos:
                tar_fh = tf.extractfile(info)
                head = tar_fh.read(HEAD_BYTES) if tar_fh is not None else b""
                out.append((head, functools.partial(_tar_read, real, info.name)))
    return out


def _gzip_read(real: Path) -> bytes:
    with gzip.open(real, "rb") as fh:
        return fh.read()


def _zip_read(real: Path, member: str) -> bytes:
    with zipfile.ZipFile(real) as zf:
        return zf.read(member)


def _tar_read(real: Path, member: str) -> bytes:
    with tarfile.open(real) as tf:
        fh = tf.extractfile(member)
        return fh.read() if fh is not None else b""


__all__ = [
    "ALLOWED_DRIVERS",
    "SIDECAR_SUFFIXES",
    "SOURCE_SIGNATURES",
    "Confinement",
    "apply_gdal_config",
    "gdal_config",
]
