"""HTML pages of the services directory (``f=html``, the default without ``f``).

Pages are for people: every resource links to its children, every operation has a form that
submits GET with the ArcGIS parameter names. No client parses these pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request

from livemosaic.rest.formats import dumps
from livemosaic.rest.image_params import FORMATS
from livemosaic.rest.params import Params

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Link:
    """A labelled link."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of an operation form."""

    name: str
    kind: str = "text"  # text | textarea | select
    choices: tuple[str, ...] = ()
    help: str = ""
    default: str = ""


@dataclass(slots=True)
class FilledField:
    """A form input with the value to show."""

    name: str
    kind: str
    choices: tuple[str, ...]
    help: str
    value: str = ""


_BOOL = ("", "true", "false")
_INTERP = (
    "",
    "RSP_BilinearInterpolation",
    "RSP_NearestNeighbor",
    "RSP_CubicConvolution",
    "RSP_Majority",
)
_GEOM = (
    "",
    "esriGeometryPoint",
    "esriGeometryMultipoint",
    "esriGeometryPolyline",
    "esriGeometryPolygon",
    "esriGeometryEnvelope",
)

OPERATION_FORMS: dict[str, tuple[FormField, ...]] = {
    "exportImage": (
        FormField("bbox", help="xmin,ymin,xmax,ymax or envelope JSON; default: the service extent"),
        FormField("bboxSR", help="wkid or spatial reference JSON"),
        FormField("size", default="400,400", help="width,height in pixels"),
        FormField("imageSR"),
        FormField("time", help="epoch ms: t or t1,t2"),
        FormField("format", "select", FORMATS),
        FormField(
            "pixelType", "select", ("", "U8", "S8", "U16", "S16", "U32", "S32", "F32", "F64")
        ),
        FormField("noData"),
        FormField(
            "noDataInterpretation", "select", ("", "esriNoDataMatchAny", "esriNoDataMatchAll")
        ),
        FormField("interpolation", "select", _INTERP),
        FormField("compressionQuality"),
        FormField("bandIds", help="zero-based, e.g. 2,1,0"),
        FormField("mosaicRule", "textarea"),
        FormField("renderingRule", "textarea"),
        FormField("adjustAspectRatio", "select", _BOOL),
        FormField("f", "select", ("image", "json", "pjson", "html"), default="image"),
    ),
    "query": (
        FormField("where", default="1=1"),
        FormField("objectIds"),
        FormField("time"),
        FormField("geometry", "textarea"),
        FormField("geometryType", "select", _GEOM),
        FormField("inSR"),
        FormField(
            "spatialRel",
            "select",
            (
                "",
                "esriSpatialRelIntersects",
                "esriSpatialRelContains",
                "esriSpatialRelWithin",
                "esriSpatialRelEnvelopeIntersects",
            ),
        ),
        FormField("outFields", default="*"),
        FormField("returnGeometry", "select", _BOOL),
        FormField("outSR"),
        FormField("orderByFields"),
        FormField("resultOffset"),
        FormField("resultRecordCount"),
        FormField("returnIdsOnly", "select", _BOOL),
        FormField("returnCountOnly", "select", _BOOL),
        FormField("returnExtentOnly", "select", _BOOL),
        FormField("returnDistinctValues", "select", _BOOL),
        FormField("outStatistics", "textarea"),
        FormField("groupByFieldsForStatistics"),
        FormField("pixelSize"),
        FormField("multidimensionalDefinition", "textarea"),
        FormField("f", "select", ("html", "json", "pjson"), default="html"),
    ),
    "identify": (
        FormField("geometry", "textarea", help='x,y or {"x":..,"y":..,"spatialReference":..}'),
        FormField("geometryType", "select", _GEOM),
        FormField("mosaicRule", "textarea"),
        FormField("renderingRule", "textarea"),
        FormField("renderingRules", "textarea"),
        FormField("pixelSize"),
        FormField("time"),
        FormField("returnGeometry", "select", _BOOL),
        FormField("returnCatalogItems", "select", _BOOL),
        FormField("returnPixelValues", "select", _BOOL),
        FormField("maxItemCount"),
        FormField("f", "select", ("html", "json", "pjson"), default="html"),
    ),
    "getSamples": (
        FormField("geometry", "textarea"),
        FormField("geometryType", "select", _GEOM),
        FormField("sampleDistance"),
        FormField("sampleCount"),
        FormField("mosaicRule", "textarea"),
        FormField("pixelSize"),
        FormField("time"),
        FormField("returnFirstValueOnly", "select", _BOOL),
        FormField("interpolation", "select", _INTERP),
        FormField("outFields"),
        FormField("f", "select", ("html", "json", "pjson"), default="html"),
    ),
}


def render(template: str, **context: Any) -> str:
    """Render a template of ``rest/templates``."""
    return _ENV.get_template(template).render(**context)


def crumbs(request: Request) -> list[Link]:
    """Breadcrumb links from the services root down to this resource."""
    parts = [p for p in display_path(request).split("/") if p]
    out: list[Link] = []
    if len(parts) < 3:
        return [Link("Home", "/" + "/".join(parts[:1] + ["rest", "services"]))]
    base = "/" + "/".join(parts[:3])
    out.append(Link("Home", base))
    for i in range(3, len(parts)):
        out.append(Link(parts[i], "/" + "/".join(parts[: i + 1])))
    return out


def display_path(request: Request) -> str:
    """The request path as the client spelled it (routing sees it lower-cased)."""
    original = request.scope.get("state", {}).get("original_path")
    return str(original) if original else request.url.path


def self_url(request: Request, **params: str) -> str:
    """This request's URL (client spelling) with some query parameters replaced."""
    url = request.url.replace(path=display_path(request))
    return str(url.include_query_params(**params))


def _format_url(request: Request, f: str) -> str:
    return self_url(request, f=f)


def page(request: Request, template: str, title: str, **context: Any) -> str:
    """A page with the common header, breadcrumbs and JSON links."""
    return render(
        template,
        title=title,
        crumbs=crumbs(request),
        json_url=_format_url(request, "json"),
        pjson_url=_format_url(request, "pjson"),
        **context,
    )


def pretty(data: Any) -> str:
    """Indented JSON text for display."""
    return dumps(data, pretty=True)


def _is_field(value: Any) -> bool:
    return isinstance(value, dict) and "name" in value and "type" in value


def _display(value: Any) -> str:
    """A property value as the JSON shows it (true/false, null as empty), never cut short."""
    if value is None:
        return ""
    if isinstance(value, list) and value and all(_is_field(v) for v in value):
        return "; ".join(f"{v['name']} (type: {v['type']}, alias: {v.get('alias', v['name'])})"
                         for v in value)  # fmt: skip
    if isinstance(value, bool | dict | list):
        return json.dumps(value, default=str)
    return str(value)


def resource_page(
    request: Request,
    title: str,
    data: Any,
    *,
    children: list[Link] | None = None,
    operations: list[Link] | None = None,
    show_properties: bool = False,
    image_url: str | None = None,
) -> str:
    """A resource page: its properties or JSON, child resources and operations."""
    properties = (
        [(k, _display(v)) for k, v in data.items()]
        if show_properties and isinstance(data, dict)
        else []
    )
    return page(
        request,
        "resource.html",
        title,
        properties=properties,
        children=children or [],
        operations=operations or [],
        image_url=image_url,
        body=None if properties else pretty(data),
    )


def operation_page(
    request: Request,
    operation: str,
    params: Params,
    *,
    result: Any = None,
    image_url: str | None = None,
    error: str | None = None,
) -> str:
    """An operation form prefilled with the submitted values, with an optional result."""
    fields: list[FilledField] = []
    for spec in OPERATION_FORMS.get(operation, ()):
        value = params.raw(spec.name)
        if spec.name == "f" and (value is None or value.lower() == "html"):
            value = spec.default
        fields.append(
            FilledField(
                spec.name,
                spec.kind,
                spec.choices,
                spec.help,
                value if value is not None else spec.default,
            )
        )
    return page(
        request,
        "operation.html",
        operation,
        action=display_path(request),
        fields=fields,
        submit_label=f"{operation} (GET)",
        result=pretty(result) if result is not None else None,
        image_url=image_url,
        error=error,
    )


def has_operation_input(params: Params) -> bool:
    """True when a request carries more than ``f``/``callback``/``token`` (run the operation)."""
    return any(name not in ("f", "callback", "token") for name in params.names())


def render_error_page(body: dict[str, Any]) -> str:
    """An HTML page showing an error envelope."""
    err = body.get("error", {})
    return render(
        "error.html",
        title="Error",
        crumbs=[],
        json_url=None,
        pjson_url=None,
        message=err.get("message", ""),
        code=err.get("code", ""),
        details=err.get("details", []),
    )


__all__ = [
    "OPERATION_FORMS",
    "FormField",
    "Link",
    "crumbs",
    "has_operation_input",
    "operation_page",
    "page",
    "pretty",
    "render",
    "render_error_page",
    "resource_page",
]
