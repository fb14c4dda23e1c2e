"""Confinement of every file GDAL opens for an item (adapters/raster/confine.py).

Hostile rasters of each kind (raw VRT band, simple sources to /etc/passwd and to a raster
beside the data folder, relative and nested VRTs, a VRT under a .tif name, /vsizip/,
/vsicurl/ and http:// sources to a real listener, vrt:// and NETCDF: strings, an overview
sidecar and a file symlinked to the outside, a zip holding a VRT) are refused before GDAL
opens anything: an inotify watch on the outside folder sees no open, the listener no request,
and the reason names the kind of reference, never its target. A legitimate VRT still works,
network locations open only under an allowed object-store prefix, and rasters (and the
overviews built for them) are only ever opened read-only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.env import get_gdal_config

from livemosaic.adapters.catalog import open_stores
from livemosaic.adapters.raster import RasterioSource
from livemosaic.adapters.raster.confine import NO_NETWORK_EXTENSION, Confinement, gdal_config
from livemosaic.adapters.raster.dataset import open_dataset
from livemosaic.adapters.raster.overviews import RasterioOverviewBuilder
from livemosaic.adapters.watch import build_pipeline
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import Extent
from livemosaic.core.ports import InspectOptions, ReadRequest
from livemosaic.core.watch_rules import WatchRule
from livemosaic.errors import PathNotAllowed, RasterRefused, RasterRejected, RasterUnavailable
from tests.adapters.hostile import (
    BASE,
    SIZE,
    TRANSFORM,
    OpenWatch,
    World,
    listener,
    make_world,
    simple,
)
from tests.adapters.hostile import (
    vrt as vrt_band,
)
from tests.conftest import reader_folders

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux only")
OPTS = InspectOptions(dataset_crs="EPSG:32618")
BIN = Path(sys.executable).parent / "livemosaic"


@pytest.fixture()
def world(tmp_path: Path, shared_data: Path) -> Iterator[tuple[World, OpenWatch, object]]:
    with listener() as (port, requests):
        w = make_world(tmp_path, port, shared_data)
        watch = OpenWatch(w.outside)
        (w.outside / "real.tif").read_bytes()  # the watch sees an open when there is one
        assert "real.tif" in watch.poll()
        watch.events.clear()
        try:
            yield w, watch, requests
        finally:
            watch.close()


def assert_clean_reason(world: World, path: Path, reason: str) -> None:
    """A refusal that says what kind of reference it was, not where it pointed."""
    assert "refused" in reason, reason
    rest = reason.replace(str(path), "<path>")
    for secret in world.secrets():
        assert secret not in rest, (secret, reason)


def test_each_hostile_raster_is_refused_by_the_ingestor_and_the_pipeline(
    world: tuple[World, OpenWatch, object], tmp_path: Path
) -> None:
    w, watch, requests = world
    source = RasterioSource([w.data])
    stores = open_stores(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        ing = Ingestor(stores.catalog, source, [w.data])
        ing.create_dataset("d", "EPSG:32618")
        for name, path in w.hostile.items():
            if name == "link.tif":  # the handed path itself leads outside
                with pytest.raises(PathNotAllowed):
                    ing.add_paths("d", [path])
                continue
            report = ing.add_paths("d", [path])
            assert report.added == 0 and len(report.rejected) == 1, (name, report)
            assert_clean_reason(w, path, report.rejected[0][1])
        pipeline = build_pipeline(stores.catalog, stores.journal, source, [w.data])
        report = pipeline.process(WatchRule.adhoc("p"), list(w.hostile.values()), explicit=True)
        assert report.items_added == 0, report
        refused = dict(report.quarantined + report.rejected)
        assert len(refused) == len(w.hostile), refused
        for path, reason in refused.items():
            assert "refused" in reason or "not inside" in reason, (path, reason)
            assert str(w.outside) not in reason and "127.0.0.1" not in reason, reason
    finally:
        stores.close()
    assert watch.poll() == [], "a file outside the data folders was opened"
    assert requests() == 0  # type: ignore[operator]


def test_other_names_gdal_would_follow_are_refused(
    world: tuple[World, OpenWatch, object],
) -> None:
    w, watch, requests = world
    conf = Confinement.of([w.data])
    names = [
        f"/vsizip/{w.outside / 'real.zip'}/real.tif",
        f"/vsizip/{{{w.outside / 'real.zip'}}}/real.tif",
        f"/vsigzip/{w.outside / 'real.tif'}",
        f"/vsisubfile/0_100,{w.outside / 'real.tif'}",
        f"/vsicurl/http://127.0.0.1:{w.port}/a.tif",
        "/vsis3/bucket/a.tif",
        "/vsimem/a.tif",
        "/vsistdin/",
        "https://example.invalid/a.tif",
        f"GTI:{w.data / 'base.tif'}",
        f"WMS:http://127.0.0.1:{w.port}/wms",
        simple(str(w.outside / "real.tif")),  # an inline XML dataset
        f'NETCDF:"{w.outside / "x.nc"}":v',
        f"vrt://{w.outside / 'real.tif'}",
        str(w.outside / "real.tif"),
        f"{w.data}/../elsewhere/real.tif",
    ]
    for name in names:
        with pytest.raises(RasterRejected) as caught:
            open_dataset(name, confine=conf, path="item")
        assert "refused" in caught.value.reason, (name, caught.value.reason)
        assert str(w.outside) not in caught.value.reason
    assert watch.poll() == []
    assert requests() == 0  # type: ignore[operator]


def test_a_legitimate_vrt_inside_the_folders_reads_like_its_source(
    world: tuple[World, OpenWatch, object],
) -> None:
    w, watch, _ = world
    (w.data / "sub").mkdir()
    (w.data / "sub" / "good.vrt").write_text(simple("../base.tif", relative=True))
    (w.data / "good.tif").write_text(simple(str(w.data / "base.tif")))  # VRT under a .tif name
    source = RasterioSource([w.data])
    for path in (w.data / "sub" / "good.vrt", w.data / "good.tif"):
        (item,) = source.inspect(str(path), OPTS)
        assert item.attributes["driver"] == "VRT"
        left, top = TRANSFORM.c, TRANSFORM.f
        extent = Extent(left, top - SIZE * 30.0, left + SIZE * 30.0, top)
        block = source.read(item, ReadRequest(extent, "EPSG:32618", SIZE, SIZE))
        assert block is not None
        with rasterio.open(path) as ds:
            np.testing.assert_array_equal(block.data[0], ds.read(1))
        np.testing.assert_array_equal(block.data[0], BASE)
    assert watch.poll() == []


def test_a_file_replaced_by_a_symlink_to_the_outside_is_not_read_again(
    world: tuple[World, OpenWatch, object],
) -> None:
    w, watch, _ = world
    tile = w.data / "tile.tif"
    shutil.copyfile(w.data / "base.tif", tile)
    source = RasterioSource([w.data])
    (item,) = source.inspect(str(tile), OPTS)
    tile.unlink()
    os.symlink(w.outside / "real.tif", tile)
    extent = Extent(TRANSFORM.c, TRANSFORM.f - SIZE * 30.0, TRANSFORM.c + SIZE * 30.0, TRANSFORM.f)
    with pytest.raises(RasterUnavailable) as caught:
        source.read(item, ReadRequest(extent, "EPSG:32618", SIZE, SIZE))
    assert "refused" in caught.value.cause
    assert watch.poll() == []


def test_network_locations_open_only_under_an_allowed_prefix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with listener() as (port, requests):
        allowed = f"/vsicurl/http://127.0.0.1:{port}/allowed/"
        try:
            source = RasterioSource([data], object_store_prefixes=[allowed])
            assert "CPL_VSIL_CURL_ALLOWED_EXTENSIONS" not in os.environ
            (data / "other.vrt").write_text(simple(f"/vsicurl/http://127.0.0.1:{port}/other/a.tif"))
            with pytest.raises(RasterRejected, match="refused"):
                source.inspect(str(data / "other.vrt"), OPTS)
            for escape in ("../other/a.tif", "x/%2E%2E/%2e%2e/other/a.tif", "a.tif?x=../b"):
                with pytest.raises(RasterRefused):
                    open_dataset(allowed + escape, confine=source.confine)
            assert requests() == 0
            with pytest.raises(RasterRejected) as caught:
                open_dataset(allowed + "a.tif", confine=source.confine, path="remote item")
            assert requests() > 0  # the allowed prefix was really asked
            assert caught.value.reason == "remote item: the network location cannot be opened."
        finally:
            RasterioSource([data])  # back to no network for the rest of this process
    assert os.environ["CPL_VSIL_CURL_ALLOWED_EXTENSIONS"] == NO_NETWORK_EXTENSION


def test_gdal_options_back_the_checks_up(tmp_path: Path) -> None:
    """With the options applied, GDAL itself sends no request even when our check is
    bypassed; with a permissive extension list it would."""
    RasterioSource([tmp_path])
    for key, value in gdal_config(Confinement.of([tmp_path])).items():
        assert os.environ[key] == value
        assert get_gdal_config(key, normalize=False) == value
    with listener() as (port, requests):
        with pytest.raises(rasterio.errors.RasterioIOError):
            rasterio.open(f"/vsicurl/http://127.0.0.1:{port}/direct.tif")
        assert requests() == 0
        with rasterio.Env(CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif"):
            with pytest.raises(rasterio.errors.RasterioIOError):
                rasterio.open(f"/vsicurl/http://127.0.0.1:{port}/direct2.tif")
        assert requests() > 0


def _open_modes(folder: Path) -> dict[str, int]:
    """Open file descriptors of this process on files under ``folder``: path -> flags."""
    modes: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            info = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        if target.startswith(str(folder)):
            modes[target] = int(info.split("flags:")[1].split()[0], 8)
    return modes


def test_every_sample_raster_is_opened_read_only(shared_data: Path) -> None:
    conf = Confinement.of([shared_data])
    files = [
        "imagery/RGB2.byte.tif",
        "imagery/TCI.tif",
        "dem/N10W110.hgt.zip",
        "timeseries/modis_ndvi/TERRA_MODIS_012010_NDVI_2013-09-14.jp2",
        "formats/test.grd",
        "multidim/nam.t00z.awp21100.tm00.grib2",
        "timeseries/bcsd_obs_1999.nc",
    ]
    seen = 0
    for rel in files:
        with open_dataset(str(shared_data / rel), confine=conf) as ds:
            if ds.count:
                ds.read(1, window=((0, 1), (0, 1)))
            modes = _open_modes(shared_data)
            seen += len(modes)
            for target, flags in modes.items():
                assert flags & (os.O_WRONLY | os.O_RDWR) == 0, (target, oct(flags))
    assert seen >= len(files)


def test_a_raw_band_inside_the_folders_is_refused_gdal_would_open_it_for_writing(
    tmp_path: Path,
) -> None:
    """GDAL 3.10 opens a VRTRawRasterBand's file O_RDWR even for a read-only VRT."""
    (tmp_path / "inside.bin").write_bytes(bytes(SIZE * SIZE))
    from tests.adapters.hostile import raw

    (tmp_path / "raw.vrt").write_text(raw(str(tmp_path / "inside.bin")))
    with pytest.raises(RasterRejected, match="raw VRT band"):
        open_dataset(str(tmp_path / "raw.vrt"), confine=Confinement.of([tmp_path]))
    assert _open_modes(tmp_path) == {}


@pytest.mark.parametrize("sample", ["imagery/RGB.byte.tif", "imagery/RGB2.byte.tif"])
def test_overviews_are_built_without_writing_the_raster(
    shared_data: Path, tmp_path: Path, sample: str
) -> None:
    raster = tmp_path / Path(sample).name
    shutil.copyfile(shared_data / sample, raster)
    if (shared_data / (sample + ".msk")).exists():
        shutil.copyfile(shared_data / (sample + ".msk"), str(raster) + ".msk")
    before = {
        p: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in tmp_path.iterdir()
    }
    conf = Confinement.of([tmp_path])
    assert RasterioOverviewBuilder(conf).build_overviews(str(raster))
    for path, state in before.items():
        assert (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()) == state
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    # the same overviews GDAL builds when it may write the file (on a second copy)
    reference = tmp_path / "reference" / raster.name
    reference.parent.mkdir()
    for path in before:
        shutil.copyfile(path, reference.parent / path.name)
    with rasterio.Env(TIFF_USE_OVR=True, COMPRESS_OVERVIEW="DEFLATE"):
        with rasterio.open(reference, "r+") as ds:
            ds.build_overviews([2, 4], Resampling.average)
    for level in (0, 1):
        with (
            open_dataset(str(raster), confine=conf, overview_level=level) as ours,
            rasterio.open(reference, overview_level=level) as gdal,
        ):
            np.testing.assert_array_equal(ours.read(), gdal.read())
            np.testing.assert_array_equal(ours.read_masks() > 0, gdal.read_masks() > 0)
    assert not RasterioOverviewBuilder(conf).build_overviews(str(raster))  # current now


def test_python_pixel_functions_stay_off(tmp_path: Path) -> None:
    """GDAL_VRT_ENABLE_PYTHON=NO: even a VRT opened around our check runs no Python; with
    the option at YES the same file would (so the option is what stops it)."""
    RasterioSource([tmp_path])
    marker = tmp_path / "ran"
    code = f"def f(in_ar, out_ar, *args, **kwargs):\n    open({str(marker)!r}, 'w').close()\n"
    (tmp_path / "py.vrt").write_text(
        vrt_band(
            '<VRTRasterBand dataType="Byte" band="1" subClass="VRTDerivedRasterBand">'
            "<PixelFunctionType>f</PixelFunctionType>"
            "<PixelFunctionLanguage>Python</PixelFunctionLanguage>"
            f"<PixelFunctionCode><![CDATA[\n{code}]]></PixelFunctionCode></VRTRasterBand>"
        )
    )
    with pytest.raises(RasterRejected, match="Python"):
        open_dataset(str(tmp_path / "py.vrt"), confine=Confinement.of([tmp_path]))
    with rasterio.open(tmp_path / "py.vrt") as ds, pytest.raises(rasterio.errors.RasterioIOError):
        ds.read(1)
    assert not marker.exists()
    with rasterio.Env(GDAL_VRT_ENABLE_PYTHON="YES"), rasterio.open(tmp_path / "py.vrt") as ds:
        ds.read(1)
    assert marker.exists()


def test_gdal_probes_sidecars_instead_of_listing_the_folder(tmp_path: Path) -> None:
    """GDAL_DISABLE_READDIR_ON_OPEN=TRUE: opening a raster does not open its folder for
    listing (it would with FALSE), and external masks are still found."""
    shutil.copyfile(Path(reader_folders()[0]) / "imagery/RGB2.byte.tif", tmp_path / "m.tif")
    shutil.copyfile(Path(reader_folders()[0]) / "imagery/RGB2.byte.tif.msk", tmp_path / "m.tif.msk")
    conf = Confinement.of([tmp_path])
    RasterioSource([tmp_path])
    watch = OpenWatch(tmp_path)
    try:
        with open_dataset(str(tmp_path / "m.tif"), confine=conf) as ds:
            assert ds.mask_flag_enums[0] == [rasterio.enums.MaskFlags.per_dataset]
        assert "" not in watch.poll()  # "" = the folder itself
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="FALSE"), rasterio.open(tmp_path / "m.tif"):
            pass
        assert "" in watch.poll()
    finally:
        watch.close()


def test_network_reads_are_bounded_by_the_timeout(tmp_path: Path) -> None:
    """GDAL_HTTP_TIMEOUT from object_store_timeout_seconds: a store that never answers
    fails the open after about that long, not after GDAL's default."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # accepts connections, never answers
    prefix = f"/vsicurl/http://127.0.0.1:{hole.getsockname()[1]}/bucket/"
    try:
        elapsed = {}
        for timeout in (1, 3):
            source = RasterioSource(
                [tmp_path], object_store_prefixes=[prefix], object_store_timeout_seconds=timeout
            )
            start = time.monotonic()
            with pytest.raises(RasterRejected, match="network location cannot be opened"):
                open_dataset(prefix + f"slow{timeout}.tif", confine=source.confine)
            elapsed[timeout] = time.monotonic() - start
        assert 0.8 <= elapsed[1] < 20  # GDAL's own default is 30 s per request
        assert elapsed[3] >= 2.5 and elapsed[3] > elapsed[1] + 1
    finally:
        hole.close()
        RasterioSource([tmp_path])


def test_the_command_line_refuses_them_too(world: tuple[World, OpenWatch, object]) -> None:
    """`livemosaic dataset add` and `livemosaic add` (real subprocesses, which the inotify
    watch sees as well) build their reader from LIVEMOSAIC_DATA_FOLDERS."""
    w, watch, requests = world
    env = dict(os.environ)
    env["LIVEMOSAIC_DATA_DIR"] = str(w.root / "state")
    env["LIVEMOSAIC_DATA_FOLDERS"] = str(w.data)
    hostile = [str(p) for k, p in w.hostile.items() if k != "link.tif"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    assert run("dataset", "create", "d", "--crs", "EPSG:32618").returncode == 0
    proc = run("dataset", "add", "d", *hostile)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("refused before opening") == len(hostile), proc.stderr
    proc = run("add", "--dataset", "piped", *hostile)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("refused before opening") == len(hostile), proc.stderr
    assert str(w.outside) not in proc.stderr and "127.0.0.1" not in proc.stderr
    assert run("dataset", "add", "d", str(w.data / "base.tif")).returncode == 0
    assert watch.poll() == []
    assert requests() == 0  # type: ignore[operator]


def test_rasters_are_opened_in_one_place() -> None:
    """Only open_dataset opens rasters (read-only, confined); the one other rasterio.open is
    the overview builder's own temporary VRT."""
    import ast

    import livemosaic

    allowed = {("dataset.py", "DatasetReader"), ("overviews.py", "rasterio.open")}
    found = set()
    for path in Path(livemosaic.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("rasterio.open", "DatasetReader", "rasterio.io.DatasetReader"):
                found.add((path.name, name))
    assert found == allowed


def test_archive_members_are_checked_by_content(
    world: tuple[World, OpenWatch, object],
) -> None:
    import gzip
    import tarfile
    import zipfile

    w, watch, _ = world
    conf = Confinement.of([w.data])
    hostile = simple(str(w.outside / "real.tif")).encode()
    tif = (w.data / "base.tif").read_bytes()
    (w.data / "vrt.gz").write_bytes(gzip.compress(hostile))
    (w.data / "tif.gz").write_bytes(gzip.compress(tif))
    for name, member in (("vrt.tar", hostile), ("tif.tar", tif)):
        with tarfile.open(w.data / name, "w") as tf:
            (w.data / "member").write_bytes(member)
            tf.add(w.data / "member", "member.x")
    with zipfile.ZipFile(w.data / "tif.zip", "w") as zf:
        zf.writestr("base.tif", tif)
    for name in (f"/vsigzip/{w.data}/vrt.gz", f"/vsitar/{w.data}/vrt.tar/member.x"):
        with pytest.raises(RasterRefused, match="refused before opening"):
            open_dataset(name, confine=conf)
    for name in (
        f"/vsigzip/{w.data}/tif.gz",
        f"/vsitar/{w.data}/tif.tar/member.x",
        f"/vsizip/{w.data}/tif.zip/base.tif",
        f"/vsizip/{w.data}/tif.zip",
    ):
        with open_dataset(name, confine=conf) as ds:
            np.testing.assert_array_equal(ds.read(1), BASE)
    assert watch.poll() == []


def _band(source: str) -> str:
    return f'<VRTRasterBand dataType="Byte" band="1">{source}</VRTRasterBand>'


@pytest.mark.parametrize(
    "template",
    [
        _band("<ComplexSource><SourceFilename>{out}</SourceFilename></ComplexSource>"),
        _band("<AveragedSource><SourceFilename>{out}</SourceFilename></AveragedSource>"),
        _band(
            "<KernelFilteredSource><SourceFilename>{out}</SourceFilename>"
            "<Kernel><Size>1</Size><Coefs>1</Coefs></Kernel></KernelFilteredSource>"
        ),
        _band(
            "<Overview><SourceFilename>{out}</SourceFilename><SourceBand>1</SourceBand></Overview>"
        ),
        '<MaskBand><VRTRasterBand dataType="Byte"><SimpleSource><SourceFilename>{out}'
        "</SourceFilename></SimpleSource></VRTRasterBand></MaskBand>" + _band(""),
        _band("<simplesource><sourcefilename>{out}</sourcefilename></simplesource>"),
        _band(
            '<SimpleSource><SourceFilename relativeToVRT="true">../elsewhere/x.tif</SourceFilename></SimpleSource>'
        ),
    ],
    ids=["complex", "averaged", "kernel", "overview", "mask", "lower-case", "odd-relative"],
)
def test_every_vrt_source_element_is_followed(tmp_path: Path, template: str) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    (elsewhere / "x.tif").write_bytes(b"II*\x00")
    (data / "v.vrt").write_text(vrt_band(template.format(out=elsewhere / "x.tif")))
    with pytest.raises(RasterRefused, match="outside the registered data folders"):
        open_dataset(str(data / "v.vrt"), confine=Confinement.of([data]))


def test_a_warped_vrt_source_dataset_is_followed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "w.vrt").write_text(
        '<VRTDataset rasterXSize="4" rasterYSize="4" subClass="VRTWarpedDataset">'
        "<GDALWarpOptions><SourceDataset>/etc/passwd</SourceDataset></GDALWarpOptions>"
        "</VRTDataset>"
    )
    with pytest.raises(RasterRefused, match="outside the registered data folders"):
        open_dataset(str(data / "w.vrt"), confine=Confinement.of([data]))
