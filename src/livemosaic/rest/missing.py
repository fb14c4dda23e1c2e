"""``{root}/livemosaic/missing``: the files of a dataset that are gone while their items remain.

ArcGIS has no resource for this, so it is a livemosaic extension next to the quarantine list
(publisher or administrator; ``dataset`` required, ``resultRecordCount`` caps the files,
default and maximum ``max_record_count``). The answer: ``dataset``, ``files`` (``path``,
``itemIds``), ``itemsChecked`` and ``exceededTransferLimit``. Watch rules with
``remove_missing`` remove such items by themselves (docs/watching.md).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from livemosaic.core.missing import missing_files
from livemosaic.errors import InvalidParameter
from livemosaic.rest.auth import current_principal, require_role
from livemosaic.rest.context import app_context
from livemosaic.rest.formats import json_response
from livemosaic.rest.params import parse_choice, parse_int, read_params

router = APIRouter()

MISSING_PATH = "/livemosaic/missing"
ROLE = "publisher"


@router.api_route(MISSING_PATH, methods=["GET", "POST"])
async def missing(request: Request) -> Response:
    """``{root}/livemosaic/missing``: files of a dataset that are gone, with their item ids."""
    params = await read_params(request)
    require_role(current_principal(request), ROLE)
    parse_choice(params.f, "f", ("json", "pjson"), "json")
    dataset = (params.get("dataset") or "").strip()
    if not dataset:
        raise InvalidParameter("dataset", "is required.", accepted="a mosaic dataset name")
    ctx = app_context(request)
    cap = ctx.settings.max_record_count
    limit = min(
        parse_int(params.get("resultRecordCount"), "resultRecordCount", cap, minimum=1), cap
    )
    name = (await asyncio.to_thread(ctx.catalog.get_dataset, dataset)).name
    report = await asyncio.to_thread(missing_files, ctx.catalog, name, limit=limit)
    return json_response(request, params, report.to_json())


__all__ = ["MISSING_PATH", "router"]
