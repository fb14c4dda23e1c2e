"""Property-based fuzzing of every REST operation against a real server (uvicorn on 127.0.0.1).

Hypothesis draws, for each operation, requests with valid-shaped and hostile parameter values
(huge, negative, NaN and infinite numbers, wrongly typed and deeply nested JSON, long and
unicode strings, SQL-like where clauses, envelopes in odd orders), sends them by GET or POST
and fails on any server error: an HTTP 5xx (the server runs with strict HTTP status, so an
ArcGIS error code >= 500 is an HTTP 5xx too), an ArcGIS error JSON with a code >= 500, a stack
trace, or a server path (data folder, catalog, sample data) anywhere in a response body.

The number of examples per operation is bounded for CI (``LIVEMOSAIC_FUZZ_EXAMPLES`` raises
it for a longer run); the module records ``fuzz`` figures (requests, 5xx, operations).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livemosaic.app import AppContext
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from tests.figures import record
from tests.liveserver import LiveServer, add_dataset, make_server

EXAMPLES = int(os.environ.get("LIVEMOSAIC_FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no example database in the work tree
    suppress_health_check=list(HealthCheck),
    derandomize=False,
)
ROOT = "/arcgis"
IMAGERY = f"{ROOT}/rest/services/imagery/ImageServer"
CLIMATE = f"{ROOT}/rest/services/Fuzz/climate/ImageServer"
GP_TASK = f"{ROOT}/rest/services/System/PublishingTools/GPServer/Refresh%20Service"
PUBLISHER = ("fuzzer", "fuzzer-password-1")
GET_LIMIT = 8000  # characters of query string, as ArcGIS clients switch to POST


@dataclass
class Tally:
    """What the fuzzer sent and saw, for the figures."""

    requests: int = 0
    answered: int = 0  # answers that were not an error
    errors_5xx: int = 0
    operations: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


TALLY = Tally()


# --- the server ------------------------------------------------------------------------------


def _populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    add_dataset(ing, "imagery", sorted((data / "mosaic").glob("rgb*.tif")))
    add_dataset(ing, "climate", [data / "timeseries/bcsd_obs_1999.nc"])
    ctx.publisher.publish(ServiceDefinition(name="imagery", dataset="imagery"))
    ctx.publisher.publish(
        ServiceDefinition(
            name="climate",
            dataset="climate",
            folder="Fuzz",
            properties={"hasLiveData": "true", "maxRecordCount": "5"},
        )
    )


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server with small image limits (hostile sizes meet the limit, not the memory)."""
    work = tmp_path_factory.mktemp("fuzz")
    with make_server(
        work,
        shared_data,
        _populate,
        users={PUBLISHER[0]: ("publisher", PUBLISHER[1])},
        strict_http_status=True,
        max_image_width=600,
        max_image_height=600,
        max_sample_count=200,
        request_timeout_seconds=120,
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=180) as c:
        yield c


@pytest.fixture(scope="module")
def token(client: httpx.Client) -> str:
    r = client.post(
        f"{ROOT}/tokens/generateToken",
        data={
            "username": PUBLISHER[0],
            "password": PUBLISHER[1],
            "client": "requestip",
            "f": "json",
        },
    )
    return str(r.json()["token"])


@pytest.fixture(scope="module")
def forbidden(server: LiveServer) -> list[bytes]:
    """Server paths no response may contain."""
    settings_ = server.settings
    needles = {
        str(server.data),
        str(settings_.data_dir),
        str(settings_.data_dir.resolve()),
        str(settings_.effective_catalog_url).removeprefix("sqlite:///"),
        str(Path(__file__).resolve().parents[2] / "src"),
    }
    return [n.encode() for n in needles if len(n) > 4]


# --- strategies --------------------------------------------------------------------------------

HUGE = [
    0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**20, -(10**20),
    10**400, 1e19, -1e19, 1e308, -1e308, 5e-324, 0.1,
]  # fmt: skip
numbers = st.one_of(
    st.sampled_from(HUGE),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=True, allow_infinity=True),
)
number_text = st.one_of(
    numbers.map(str),
    st.sampled_from(["NaN", "nan", "inf", "-inf", "Infinity", "1e999", "-0", "0x10", "1_000", ""]),
)
long_text = st.one_of(
    st.text(max_size=40),
    st.text(min_size=200, max_size=400),
    st.sampled_from(["a" * 300, "é" * 300, "\u202e\u0000\ud7ff", "../../etc/passwd", "%00", "\\x"]),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=30))
wrong_types = st.one_of(
    st.lists(json_scalars, min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, min_size=1, max_size=3),
    st.booleans(),
    st.none(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4)
    ),
    max_leaves=12,
)


odd = st.one_of(wrong_types, wrong_types, json_values)  # a JSON member of the wrong type


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value)
    except (ValueError, OverflowError):
        return str(value)


def deep(depth: int, kind: str = "list") -> str:
    """A JSON text nested ``depth`` levels deep."""
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


hostile_json = st.one_of(
    json_values.map(_dumps),
    st.sampled_from([deep(50), deep(900), deep(5000), deep(2000, "obj"), "{", "[1,", "null"]),
)


def hostile() -> st.SearchStrategy[str]:
    """Any value a parameter should survive."""
    return st.one_of(number_text, long_text, hostile_json)


def either(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A parameter's valid-shaped values (which hold hostile members of their own); the
    request builder replaces one parameter per request with an outright hostile value."""
    return valid


def comma(*parts: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map(lambda t: ",".join(str(p) for p in t))


def mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three valid draws for one odd one, so most requests get past the first check."""
    return st.one_of(valid, valid, valid, odd)


def member(valid: st.SearchStrategy[Any], odd_: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A member of a JSON object: valid, rarely odd (spoil_one makes one member odd)."""
    return st.one_of(*[valid] * 7, odd_)


@st.composite
def spoil_one(draw: st.DrawFn, objects: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A JSON object of which (every other time) exactly one member has a wrong type."""
    obj = dict(draw(objects))
    if obj and draw(st.booleans()):
        obj[draw(st.sampled_from(sorted(obj)))] = draw(odd)
    return obj


coord = st.one_of(st.floats(min_value=-2e7, max_value=2e7, allow_nan=False), st.sampled_from(HUGE))
x_utm = st.floats(min_value=100000, max_value=350000, allow_nan=False)
y_utm = st.floats(min_value=2590000, max_value=2850000, allow_nan=False)
lon = st.floats(min_value=-90, max_value=-75, allow_nan=False)
lat = st.floats(min_value=25, max_value=40, allow_nan=False)
bbox = mostly(
    st.one_of(comma(x_utm, y_utm, x_utm, y_utm), comma(lon, lat, lon, lat)),
    st.one_of(
        comma(coord, coord, coord, coord),
        st.fixed_dictionaries(
            {"xmin": coord, "ymin": coord, "xmax": coord, "ymax": coord},
            optional={"spatialReference": st.one_of(odd, st.just({"wkid": 3857}))},
        ).map(_dumps),
        st.dictionaries(
            st.sampled_from(["ymax", "xmin", "XMAX", "ymin", "spatialreference"]), json_values
        ).map(_dumps),
    ),
)
sr = mostly(
    st.sampled_from(["3857", "4326", "102100", "32618", "2056", '{"wkid": 4326}']),
    st.one_of(
        st.sampled_from(["0", "-1", "999999", "4326.5", '{"wkt": "PROJCS[nonsense]"}']),
        st.fixed_dictionaries(
            {}, optional={"wkid": numbers, "latestWkid": numbers, "wkt": long_text}
        ).map(_dumps),
        number_text,
    ),
)
size = mostly(
    comma(st.integers(1, 300), st.integers(1, 300)),
    st.one_of(
        comma(numbers, numbers),
        st.sampled_from(["600,600", "601,1", "1,601", "0,0", "-5,5", "15000,4100"]),
    ),
)
time_value = mostly(
    st.one_of(
        st.integers(880000000000, 950000000000).map(str),
        comma(st.integers(880000000000, 950000000000), st.just("null")),
    ),
    st.one_of(
        comma(numbers, numbers),
        st.sampled_from(["null,null", "1e19", "-1e19", "NaN", "inf", "1,0", "-62135596800001"]),
    ),
)
where = st.one_of(
    st.sampled_from(
        [
            "1=1",
            "OBJECTID = 9223372036854775808",
            "OBJECTID > -9223372036854775809",
            "OBJECTID IN (1, 99999999999999999999999)",
            "OBJECTID = 1e400",
            "OBJECTID = 1e19",
            "LowPS > 1e308 * 10",
            "Name LIKE '%' OR 1=1; DROP TABLE items; --",
            "' OR ''='",
            "Name = 'x' UNION SELECT * FROM users",
            "(" * 300 + "1=1" + ")" * 300,
            "UPPER(" * 60 + "Name" + ")" * 60 + " = 'A'",
            "StdTime >= DATE '9999-12-31' AND StdTime < TIMESTAMP '0001-01-01 00:00:00'",
            "AcquisitionDate BETWEEN -1e19 AND 1e19",
            "Name = '" + "é" * 500 + "'",
            "OBJECTID = '99999999999999999999'",
            "LowPS = 'NaN'",
        ]
    ),
    st.builds(
        lambda f, op, v: f"{f} {op} {v}",
        st.sampled_from(["OBJECTID", "LowPS", "Name", "StdTime", "ZOrder", "nope", "Shape_Area"]),
        st.sampled_from(["=", "<>", "<", ">=", "LIKE", "IN", "IS", "BETWEEN"]),
        st.one_of(number_text, long_text.map(lambda t: "'" + t.replace("'", "''") + "'")),
    ),
    long_text,
)
methods = st.sampled_from(
    ["esriMosaicNone", "esriMosaicCenter", "esriMosaicNadir", "esriMosaicViewpoint",
     "esriMosaicAttribute", "esriMosaicLockRaster", "esriMosaicNorthwest", "esriMosaicSeamline",
     "bogus", ""]
)  # fmt: skip
small_ints = st.lists(st.integers(0, 30), max_size=3)
mosaic_rule = mostly(
    spoil_one(
        st.fixed_dictionaries(
            {},
            optional={
                "mosaicMethod": member(methods, odd),
                "sortField": member(st.sampled_from(["OBJECTID", "StdTime", "Name", "x"]), odd),
                "sortValue": member(
                    st.one_of(
                        st.integers(0, 10**12), st.sampled_from(["1999/06/01", "2000-01-01"])
                    ),
                    odd,
                ),
                "ascending": member(st.booleans(), odd),
                "where": member(where, odd),
                "lockRasterIds": member(small_ints, st.one_of(st.lists(numbers, max_size=3), odd)),
                "fids": member(small_ints, st.one_of(st.lists(numbers, max_size=3), odd)),
                "viewpoint": member(
                    st.fixed_dictionaries({"x": x_utm, "y": y_utm}),
                    st.one_of(st.fixed_dictionaries({"x": numbers, "y": numbers}), odd),
                ),
                "mosaicOperation": member(
                    st.sampled_from(
                        ["MT_FIRST", "MT_LAST", "MT_MIN", "MT_MAX", "MT_MEAN", "MT_BLEND", "MT_SUM"]
                    ),
                    odd,
                ),
                "multidimensionalDefinition": odd,
            },
        )
    ).map(_dumps),
    hostile_json,
)
argument_value = mostly(
    st.one_of(
        st.integers(0, 6),
        st.floats(-1000, 1000),
        st.booleans(),
        st.lists(st.integers(0, 3), max_size=3),
        st.lists(st.lists(st.integers(0, 255), min_size=4, max_size=4), max_size=3),
        st.sampled_from(["Elevation1", "NDVI", "x", "$$"]),
    ),
    odd,
)
ARGUMENTS = [
    "StretchType", "Min", "Max", "NumberOfStandardDeviations", "Gamma", "Colormap",
    "ColormapName", "BandIds", "BandIndexes", "VisibleBandID", "InfraredBandID", "Azimuth",
    "Altitude", "ZFactor", "Raster", "Statistics", "DRA", "UseGamma", "ComputeGamma",
    "Scientific", "SlopeType", "PixelSizePower", "PixelSizeFactor", "Scaled",
]  # fmt: skip
rendering_rule = mostly(
    spoil_one(
        st.fixed_dictionaries(
            {
                "rasterFunction": member(
                    st.sampled_from(
                        ["None", "Stretch", "Colormap", "Hillshade", "NDVI", "ExtractBand", "Nope"]
                    ),
                    odd,
                )
            },
            optional={
                "rasterFunctionArguments": member(
                    st.dictionaries(st.sampled_from(ARGUMENTS), argument_value, max_size=5), odd
                ),
                "outputPixelType": member(st.sampled_from(["U8", "S16", "F32", "x"]), odd),
                "variableName": odd,
            },
        )
    ).map(_dumps),
    hostile_json,
)
xy_utm = st.tuples(x_utm, y_utm).map(list)
point = mostly(
    st.one_of(
        st.fixed_dictionaries({"x": x_utm, "y": y_utm}).map(_dumps),
        st.fixed_dictionaries(
            {"x": lon, "y": lat, "spatialReference": st.just({"wkid": 4326})}
        ).map(_dumps),
        comma(x_utm, y_utm),
    ),
    st.one_of(
        st.fixed_dictionaries({"x": numbers, "y": numbers}, optional={"spatialReference": odd}).map(
            _dumps
        ),
        comma(numbers, numbers),
    ),
)
geometry = mostly(
    st.one_of(
        point,
        st.fixed_dictionaries({"points": st.lists(xy_utm, min_size=1, max_size=5)}).map(_dumps),
        st.fixed_dictionaries({"paths": st.lists(st.lists(xy_utm, min_size=2, max_size=5), min_size=1, max_size=2)}).map(_dumps),
        st.fixed_dictionaries({"rings": st.lists(st.lists(xy_utm, min_size=3, max_size=6), min_size=1, max_size=2)}).map(_dumps),
        comma(x_utm, y_utm, x_utm, y_utm),
    ),
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "points": odd,
                "paths": odd,
                "rings": st.one_of(
                    st.lists(st.lists(st.lists(numbers, min_size=2, max_size=3), max_size=6), max_size=2),
                    odd,
                ),
                "xmin": numbers, "ymin": numbers, "xmax": numbers, "ymax": numbers,
                "spatialReference": odd,
            },
        ).map(_dumps),
        bbox,
        hostile_json,
    ),
)  # fmt: skip
geometry_type = st.sampled_from(
    ["esriGeometryPoint", "esriGeometryMultipoint", "esriGeometryPolyline", "esriGeometryPolygon",
     "esriGeometryEnvelope", "bogus"]
)  # fmt: skip
md_definition = mostly(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "variableName": member(st.sampled_from(["tas", "pr", "x"]), odd),
                "dimensionName": member(st.sampled_from(["StdTime", "StdZ"]), odd),
                "values": member(
                    st.lists(
                        st.one_of(
                            st.integers(880000000000, 950000000000), st.sampled_from(["1999/03/31"])
                        ),
                        max_size=3,
                    ),
                    st.one_of(st.lists(numbers, max_size=3), odd),
                ),
                "isSlice": odd,
            },
        ),
        max_size=3,
    ).map(_dumps),
    hostile_json,
)
flag = st.sampled_from(["true", "false", "TRUE", "1", "0", "yes", ""])
f_param = st.sampled_from(["json", "pjson", "html", "image", "kmz", "", "JSON", "x" * 50])
out_statistics = mostly(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "statisticType": member(
                    st.sampled_from(["count", "min", "max", "avg", "sum", "stddev", "var"]), odd),
                "onStatisticField": member(st.sampled_from(["OBJECTID", "LowPS", "Name"]), odd),
                "outStatisticFieldName": odd,
            },
        ),
        max_size=3,
    ).map(_dumps),
    hostile_json,
)  # fmt: skip
fields = st.one_of(
    st.sampled_from(["*", "OBJECTID,Name", "Name", "nope", "OBJECTID, LowPS"]), long_text
)
formats = st.sampled_from(
    ["png", "jpgpng", "jpg", "tiff", "lerc", "bip", "bsq", "gif", "bmp", "png8", "x"]
)

EXPORT = {
    "bbox": either(bbox), "bboxSR": either(sr), "imageSR": either(sr), "size": either(size),
    "format": either(formats), "pixelType": either(st.sampled_from(["U8", "S16", "F32", "F64", "C64", "UNKNOWN"])),
    "noData": either(comma(numbers)), "noDataInterpretation": either(st.sampled_from(["esriNoDataMatchAny", "esriNoDataMatchAll"])),
    "interpolation": either(st.sampled_from(["RSP_NearestNeighbor", "RSP_BilinearInterpolation", "RSP_CubicConvolution", "RSP_Majority"])),
    "compressionQuality": either(number_text), "compressionTolerance": either(number_text), "lercVersion": either(number_text),
    "bandIds": either(st.sampled_from(["0", "2,1,0", "5", "-1", "[0,1]"])), "time": either(time_value),
    "mosaicRule": either(mosaic_rule), "renderingRule": either(rendering_rule),
    "adjustAspectRatio": either(flag), "sliceId": either(number_text), "compression": either(st.sampled_from(["LZ77", "JPEG", "LERC"])),
}  # fmt: skip
QUERY = {
    "where": either(where), "objectIds": either(st.sampled_from(["1,2", "99999999999999999999", "-1", "1.5", "[3]"])),
    "time": either(time_value), "geometry": either(geometry), "geometryType": either(geometry_type),
    "inSR": either(sr), "spatialRel": either(st.sampled_from(["esriSpatialRelIntersects", "esriSpatialRelWithin", "x"])),
    "outFields": either(fields), "returnGeometry": either(flag), "outSR": either(sr),
    "orderByFields": either(st.sampled_from(["Name DESC", "OBJECTID ASC, LowPS", "x y z", "StdTime"])),
    "resultOffset": either(number_text), "resultRecordCount": either(number_text),
    "returnCountOnly": either(flag), "returnIdsOnly": either(flag), "returnExtentOnly": either(flag),
    "returnDistinctValues": either(flag), "outStatistics": either(out_statistics),
    "groupByFieldsForStatistics": either(fields), "pixelSize": either(point),
    "multidimensionalDefinition": either(md_definition),
}  # fmt: skip
IDENTIFY = {
    "geometry": either(geometry), "geometryType": either(geometry_type), "mosaicRule": either(mosaic_rule),
    "renderingRule": either(rendering_rule), "renderingRules": either(rendering_rule.map(lambda r: f"[{r}]")),
    "pixelSize": either(point), "time": either(time_value), "returnGeometry": either(flag),
    "returnCatalogItems": either(flag), "returnPixelValues": either(flag), "maxItemCount": either(number_text),
    "sliceId": either(number_text),
}  # fmt: skip
SAMPLES = {
    "geometry": either(geometry), "geometryType": either(geometry_type), "sampleDistance": either(number_text),
    "sampleCount": either(number_text), "mosaicRule": either(mosaic_rule), "time": either(time_value),
    "returnFirstValueOnly": either(flag), "interpolation": either(st.sampled_from(["RSP_NearestNeighbor", "x"])),
    "outFields": either(fields), "renderingRule": either(rendering_rule), "sliceId": either(number_text),
}  # fmt: skip
MULTIDIM = {
    "returnDimensionValues": either(st.sampled_from(["always", "never", "ifIrregular"])),
    "multidimensionalDefinition": either(md_definition), "variable": either(st.sampled_from(["tas", "pr", "x"])),
}  # fmt: skip
GP_SUBMIT = {
    "serviceName": either(st.sampled_from(["Fuzz/climate", "climate", "imagery", "nope", "a/b/c"])),
    "serviceType": either(st.sampled_from(["ImageServer", "MapServer", "x"])),
    "serviceFolder": either(st.sampled_from(["Fuzz", "", "#", "/", "System"])),
    "refreshOptions": either(hostile_json),
}  # fmt: skip
TOKEN = {
    "username": either(st.sampled_from([PUBLISHER[0], "nobody", ""])), "password": either(long_text),
    "client": either(st.sampled_from(["referer", "ip", "requestip"])), "referer": either(long_text),
    "ip": either(st.sampled_from(["127.0.0.1", "::1", "999.1.1.1"])), "expiration": either(number_text),
}  # fmt: skip
NOTHING: dict[str, st.SearchStrategy[str]] = {}

item_id = st.one_of(
    st.integers(0, 30).map(str),
    st.sampled_from(["99999999999999999999", "9223372036854775807", "9223372036854775808", "-1",
                     "1.5", "1e3", "%00", "0x1", str(10**400)[:500]]),
)  # fmt: skip
job_id = st.one_of(
    st.text(alphabet="0123456789abcdefj", max_size=40), long_text.map(lambda t: t.replace("/", ""))
)
output_name = st.one_of(
    st.sampled_from(["a" * 300, "a" * 300 + "/x.png", "../catalog.db", "%2e%2e/catalog.db", "x/" * 100 + "y",
                     "imagery_ImageServer/_ags_0.png", "\u00e9" * 200, "a\\b", "nul%00.png"]),
    st.text(alphabet=st.characters(blacklist_characters="/?#", blacklist_categories=["Cs"]), min_size=1, max_size=260),
)  # fmt: skip
svc_path = st.sampled_from([IMAGERY, CLIMATE])


@dataclass(frozen=True)
class Operation:
    """An endpoint and the parameters the fuzzer draws for it."""

    name: str
    path: st.SearchStrategy[str]
    params: dict[str, st.SearchStrategy[str]]
    token: bool = False  # send the publisher's token (GP and livemosaic endpoints need it)
    weight: int = 1  # examples drawn: weight x LIVEMOSAIC_FUZZ_EXAMPLES


def child(suffix: str) -> st.SearchStrategy[str]:
    return svc_path.map(lambda base: base + suffix)


OPERATIONS = [
    Operation("exportImage", child("/exportImage"), EXPORT, weight=3),
    Operation("query", child("/query"), QUERY, weight=3),
    Operation("identify", child("/identify"), IDENTIFY, weight=3),
    Operation("getSamples", child("/getSamples"), SAMPLES, weight=3),
    Operation("service", svc_path, NOTHING),
    Operation("keyProperties", child("/keyProperties"), NOTHING),
    Operation("statistics", child("/statistics"), MULTIDIM),
    Operation("histograms", child("/histograms"), MULTIDIM),
    Operation("multidimensionalInfo", child("/multidimensionalInfo"), MULTIDIM),
    Operation("slices", child("/slices"), MULTIDIM),
    Operation("rasterFunctionInfos", child("/rasterFunctionInfos"), NOTHING),
    Operation("legend", child("/legend"), {"bandIds": either(long_text), "renderingRule": either(long_text)}),
    Operation("colormap", child("/colormap"), NOTHING),
    Operation("rasterAttributeTable", child("/rasterAttributeTable"), NOTHING),
    Operation("computeStatisticsHistograms", child("/computeStatisticsHistograms"), EXPORT),
    Operation("tile", st.tuples(svc_path, item_id, item_id, item_id).map(lambda t: f"{t[0]}/tile/{t[1]}/{t[2]}/{t[3]}"), NOTHING),
    Operation("item", st.tuples(svc_path, item_id).map(lambda t: f"{t[0]}/{t[1]}"), NOTHING),
    Operation("item/info", st.tuples(svc_path, item_id).map(lambda t: f"{t[0]}/{t[1]}/info"), NOTHING),
    Operation("item/keyProperties", st.tuples(svc_path, item_id).map(lambda t: f"{t[0]}/{t[1]}/info/keyProperties"), NOTHING),
    Operation("item/thumbnail", st.tuples(svc_path, item_id).map(lambda t: f"{t[0]}/{t[1]}/thumbnail"), NOTHING),
    Operation("item/image", st.tuples(svc_path, item_id).map(lambda t: f"{t[0]}/{t[1]}/image"), EXPORT),
    Operation("unknown child", st.tuples(svc_path, long_text).map(lambda t: f"{t[0]}/{quote(t[1], safe='')}"), NOTHING),
    Operation("directory", st.sampled_from([f"{ROOT}/rest/services", f"{ROOT}/rest/services/Fuzz", f"{ROOT}/rest/services/System",
                                            f"{ROOT}/rest/services/nope", f"{ROOT}/rest/info", f"{ROOT}/rest/services/x/y/MapServer"]), NOTHING),
    Operation("arcgisoutput", output_name.map(lambda n: f"{ROOT}/rest/directories/arcgisoutput/{quote(n, safe='/%')}"), NOTHING),
    Operation("generateToken", st.just(f"{ROOT}/tokens/generateToken"), TOKEN),
    Operation("GP task", st.sampled_from([GP_TASK, GP_TASK.rsplit("/", 1)[0]]), NOTHING, token=True),
    Operation("GP submitJob", st.just(f"{GP_TASK}/submitJob"), GP_SUBMIT, token=True),
    Operation("GP jobs", st.tuples(job_id, st.sampled_from(["", "/cancel", "/results", "/results/refreshResults", "/inputs", "/inputs/serviceName", "/messages"]))
              .map(lambda t: f"{GP_TASK}/jobs/{quote(t[0], safe='') or 'j'}{t[1]}"), {"returnMessages": either(flag)}, token=True),
    Operation("quarantine", st.just(f"{ROOT}/livemosaic/quarantine"), {"dataset": either(long_text), "resultRecordCount": either(number_text)}, token=True),
    Operation("missing", st.just(f"{ROOT}/livemosaic/missing"), {"dataset": either(long_text), "resultRecordCount": either(number_text)}, token=True),
    Operation("viewer", st.sampled_from([f"{ROOT}/livemosaic/viewer/imagery", f"{ROOT}/livemosaic/viewer/Fuzz/climate",
                                         f"{ROOT}/livemosaic/viewer/nope", f"{ROOT}/livemosaic/static/viewer/viewer.js",
                                         f"{ROOT}/livemosaic/static/viewer/../../catalog.db"]), NOTHING),
]  # fmt: skip


@st.composite
def requests_of(draw: st.DrawFn, op: Operation) -> tuple[str, str, dict[str, str]]:
    path = draw(op.path)
    names = sorted(draw(st.sets(st.sampled_from(sorted(op.params)))) if op.params else set())
    spoiled = draw(st.sampled_from([*names, None, None]))  # at most one outright hostile value
    params = {name: draw(hostile() if name == spoiled else op.params[name]) for name in names}
    params["f"] = draw(f_param)
    return draw(st.sampled_from(["GET", "POST"])), path, params


def check(response: httpx.Response, forbidden: list[bytes], what: str) -> None:
    """Fail on a server error, a trace or a server path in the answer."""
    body = response.content
    code = None
    if response.headers.get("content-type", "").startswith(
        ("application/json", "application/javascript")
    ):
        try:
            error = json.loads(body).get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            code = error["code"]
    if response.status_code < 400 and code is None:
        with TALLY.lock:
            TALLY.answered += 1
    if response.status_code >= 500 or (code is not None and code >= 500):
        with TALLY.lock:
            TALLY.errors_5xx += 1
        pytest.fail(f"server error {response.status_code}/{code} for {what}: {body[:600]!r}")
    assert b"Traceback (most recent call last)" not in body, what
    for needle in forbidden:
        assert needle not in body, f"server path in the answer to {what}: {body[:600]!r}"


def send(
    client: httpx.Client, token: str, op: Operation, method: str, path: str, params: dict[str, str]
) -> httpx.Response:
    headers = {"X-Esri-Authorization": f"Bearer {token}"} if op.token else {}
    if method == "GET" and len(urlencode(params)) < GET_LIMIT:  # longer ones go by POST
        return client.get(path, params=params, headers=headers)
    return client.post(path, data=params, headers=headers)


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_no_request_is_a_server_error(
    op: Operation, client: httpx.Client, token: str, forbidden: list[bytes]
) -> None:
    @settings(FUZZ, max_examples=EXAMPLES * op.weight)
    @given(requests_of(op))
    def run(request: tuple[str, str, dict[str, str]]) -> None:
        method, path, params = request
        response = send(client, token, op, method, path, params)
        with TALLY.lock:
            TALLY.requests += 1
            TALLY.operations.add(op.name)
        check(response, forbidden, f"{method} {path} {params!r}"[:2000])

    run()


# --- every member of every JSON parameter, with a value of each wrong type ----------------------

WRONG = [[1, 2], {"a": 1}, True, None, "text", -1, 1e308, []]
POINT_UTM = {"x": 200000, "y": 2700000, "spatialReference": {"wkid": 32618}}
JSON_BASES: dict[str, list[Any]] = {
    "mosaicRule": [
        {"mosaicMethod": "esriMosaicAttribute", "sortField": "OBJECTID", "sortValue": 1,
         "ascending": True, "where": "1=1", "fids": [1, 2], "mosaicOperation": "MT_FIRST"},
        {"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [1]},
        {"mosaicMethod": "esriMosaicViewpoint", "viewpoint": POINT_UTM},
        {"multidimensionalDefinition": [{"variableName": "tas", "dimensionName": "StdTime",
                                         "values": [[915148800000, 920000000000]], "isSlice": True}]},
    ],
    "renderingRule": [
        {"rasterFunction": "Stretch", "outputPixelType": "U8", "variableName": "Raster",
         "rasterFunctionArguments": {"StretchType": 5, "Min": 0, "Max": 255, "DRA": False,
                                     "NumberOfStandardDeviations": 2, "Gamma": [1, 1, 1],
                                     "UseGamma": True, "Statistics": [[0, 255, 100, 20]]}},
        {"rasterFunction": "Colormap", "rasterFunctionArguments": {"Colormap": [[1, 255, 0, 0]]}},
        {"rasterFunction": "Colormap", "rasterFunctionArguments": {"ColormapName": "Elevation1"}},
        {"rasterFunction": "Hillshade", "rasterFunctionArguments": {"Azimuth": 315, "Altitude": 45,
                                                                   "ZFactor": 1, "SlopeType": 1}},
        {"rasterFunction": "NDVI", "rasterFunctionArguments": {"VisibleBandID": 0, "InfraredBandID": 1,
                                                              "Scientific": False}},
        {"rasterFunction": "ExtractBand", "rasterFunctionArguments": {"BandIds": [0, 1]}},
        {"rasterFunction": "Stretch", "rasterFunctionArguments": {
            "StretchType": 0, "Raster": {"rasterFunction": "ExtractBand",
                                         "rasterFunctionArguments": {"BandIds": [2]}}}},
    ],
    "geometry": [
        POINT_UTM,
        {"points": [[200000, 2700000], [210000, 2710000]], "spatialReference": {"wkid": 32618}},
        {"paths": [[[200000, 2700000], [210000, 2710000]]]},
        {"rings": [[[200000, 2700000], [200000, 2710000], [210000, 2710000], [200000, 2700000]]]},
        {"xmin": 200000, "ymin": 2700000, "xmax": 210000, "ymax": 2710000,
         "spatialReference": {"wkid": 32618}},
    ],
    "bbox": [{"xmin": 200000, "ymin": 2700000, "xmax": 210000, "ymax": 2710000,
              "spatialReference": {"wkid": 32618, "latestWkid": 32618}}],
    "multidimensionalDefinition": [
        [{"variableName": "tas", "dimensionName": "StdTime", "values": [915148800000], "isSlice": True}]
    ],
    "outStatistics": [
        [{"statisticType": "count", "onStatisticField": "OBJECTID", "outStatisticFieldName": "n"}]
    ],
    "imageSR": [{"wkid": 3857, "latestWkid": 3857}, {"wkt": "GEOGCS[\"WGS 84\"]"}],
}  # fmt: skip
JSON_TARGETS: dict[str, tuple[str, dict[str, str]]] = {
    # parameter -> (operation path, the other parameters it needs)
    "mosaicRule": (f"{IMAGERY}/exportImage", {"size": "8,8"}),
    "renderingRule": (f"{IMAGERY}/exportImage", {"size": "8,8"}),
    "geometry": (f"{IMAGERY}/getSamples", {}),
    "bbox": (f"{IMAGERY}/exportImage", {"size": "8,8"}),
    "multidimensionalDefinition": (f"{CLIMATE}/slices", {}),
    "outStatistics": (f"{IMAGERY}/query", {"groupByFieldsForStatistics": "Name"}),
    "imageSR": (f"{IMAGERY}/exportImage", {"size": "8,8"}),
}
ALSO = {  # the same parameter parsed by other operations
    "mosaicRule": [(f"{IMAGERY}/identify", {"geometry": _dumps(POINT_UTM)}),
                   (f"{IMAGERY}/getSamples", {"geometry": _dumps(POINT_UTM)}),
                   (f"{IMAGERY}/query", {})],
    "geometry": [(f"{IMAGERY}/identify", {}), (f"{IMAGERY}/query", {})],
    "renderingRule": [(f"{IMAGERY}/identify", {"geometry": _dumps(POINT_UTM)})],
    "multidimensionalDefinition": [(f"{CLIMATE}/query", {}), (f"{CLIMATE}/multidimensionalInfo", {})],
}  # fmt: skip


def variants(value: Any) -> Iterator[Any]:
    """``value`` itself replaced by each wrong value, and ``value`` with one member (at any
    depth; of a list, its first element) replaced by each."""
    yield from WRONG
    if isinstance(value, dict):
        for key, inner in value.items():
            for changed in variants(inner):
                yield {**value, key: changed}
    elif isinstance(value, list) and value:  # the first element stands for the others
        for changed in variants(value[0]):
            yield [changed, *value[1:]]


def _geometry_type(value: Any) -> str:
    if isinstance(value, dict):
        for key, kind in (("points", "Multipoint"), ("paths", "Polyline"), ("rings", "Polygon"),
                          ("xmin", "Envelope")):  # fmt: skip
            if key in value:
                return f"esriGeometry{kind}"
    return "esriGeometryPoint"


@pytest.mark.parametrize("param", sorted(JSON_TARGETS))
def test_every_json_member_of_a_wrong_type_is_a_client_error(
    param: str, client: httpx.Client, forbidden: list[bytes]
) -> None:
    targets = [JSON_TARGETS[param], *ALSO.get(param, [])]
    sent = 0
    for base in JSON_BASES[param]:
        for value in variants(base):
            path, extra = targets[sent % len(targets)]  # spread the variants over the operations
            params = {**extra, param: _dumps(value), "f": "json"}
            if param == "geometry":
                params["geometryType"] = _geometry_type(value)
            response = client.post(path, data=params)
            sent += 1
            with TALLY.lock:
                TALLY.requests += 1
                TALLY.operations.add(f"json:{param}")
            check(response, forbidden, f"POST {path} {params!r}"[:2000])
    assert sent > len(WRONG)


def test_fuzz_figures() -> None:
    """Runs last in this module: the totals of the fuzzing above, for docs/security.md."""
    if not TALLY.requests:
        pytest.skip("no fuzzing ran in this session")
    assert TALLY.errors_5xx == 0
    endpoints = {o for o in TALLY.operations if not o.startswith("json:")}
    record(
        "fuzz",
        requests=TALLY.requests,
        errors_5xx=TALLY.errors_5xx,
        answered_without_error=TALLY.answered,
        operations=len(endpoints),
        json_parameters=len(TALLY.operations) - len(endpoints),
        examples_per_operation=EXAMPLES,
    )
