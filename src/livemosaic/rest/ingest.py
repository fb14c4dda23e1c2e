"""Ingest and quarantine endpoints: other scripts push files through the watcher's pipeline.

``POST {root}/livemosaic/ingest`` (publisher or administrator) takes files or folders that
lie inside the registered data folders and runs them through the same
:class:`~livemosaic.core.pipeline.IngestPipeline` as the folder watcher and ``livemosaic
add``: journal, validation by reading pixels, one catalog transaction, quarantine records,
retention and at most one Refresh Service job per changed service, owned by the caller (who
can poll it like any job they submitted). A file inside a watched
folder inherits that folder's rule (dataset, service, statistics and overview policy); any
other file needs ``dataset``. Bad files are only recorded, never moved, as with ``add``.

``GET {root}/livemosaic/quarantine`` (publisher or administrator) lists the files that could
not be ingested, with the reason. Both live outside ``{root}/rest`` (docs/watching.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from livemosaic.core.pipeline import BatchReport, IngestPipeline, InProcessRefresh
from livemosaic.core.publishing import split_qualified
from livemosaic.core.watch_rules import WatchRule, rule_for
from livemosaic.errors import InvalidParameter, LiveMosaicError, NotSupported
from livemosaic.rest.auth import current_principal, require_role
from livemosaic.rest.context import app_context
from livemosaic.rest.formats import json_response
from livemosaic.rest.params import Params, parse_bool, parse_choice, parse_int, read_params
from livemosaic.rest.refresh_wire import wire_names

router = APIRouter()

INGEST_PATH = "/livemosaic/ingest"
QUARANTINE_PATH = "/livemosaic/quarantine"
ROLE = "publisher"
FORMATS = ("json", "pjson")
PATHS_ACCEPTED = 'a JSON list of paths, e.g. ["/data/in/a.tif"], or paths separated by commas'


def parse_paths(text: str | None) -> list[str]:
    """``paths`` as a JSON list of strings or a comma-separated list (never empty)."""
    raw = (text or "").strip()
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidParameter(
                "paths", "is not a JSON list of strings.", accepted=PATHS_ACCEPTED
            )
        paths = [v.strip() for v in value if v.strip()]
    else:
        paths = [p.strip() for p in raw.split(",") if p.strip()]
    if not paths:
        raise InvalidParameter("paths", "is required.", accepted=PATHS_ACCEPTED)
    return paths


def plan_batches(
    pipeline: IngestPipeline,
    rules: Sequence[WatchRule],
    paths: Sequence[str],
    dataset: str | None,
    service: str | None,
) -> dict[WatchRule, list[str]]:
    """The files under ``paths``, grouped by the rule each is ingested under.

    Raises PathNotAllowed (403) for a path outside the data folders, InvalidParameter for a
    missing path, or for a file outside every watched folder when no dataset is named.
    """
    groups: dict[WatchRule, list[str]] = {}
    for file in pipeline.ingestor.expand(list(paths)):
        rule = rule_for(rules, file, dataset)
        if rule is None:
            if not dataset:
                raise InvalidParameter(
                    "dataset",
                    f"is required: {file} is not inside a watched folder.",
                    accepted="the name of the mosaic dataset to add the files to",
                )
            rule = WatchRule.adhoc(dataset, service)
        else:  # explicit adds only record bad files, never move them
            rule = replace(rule, quarantine="record", service=service or rule.service)
        groups.setdefault(rule, []).append(str(file))
    return groups


def for_caller(pipeline: IngestPipeline, owner: str) -> IngestPipeline:
    """The server's pipeline with refresh jobs owned by ``owner`` (so the caller may poll them)."""
    trigger = pipeline.refresh_trigger
    if isinstance(trigger, InProcessRefresh):
        return pipeline.with_trigger(trigger.with_owner(owner))
    return pipeline


def run_ingest(
    pipeline: IngestPipeline,
    rules: Sequence[WatchRule],
    paths: Sequence[str],
    dataset: str | None,
    service: str | None,
    refresh: bool,
) -> dict[str, Any]:
    """Plan and run the batches (blocking: call it on a worker thread); the JSON report."""
    if service:
        split_qualified(service)  # InvalidParameter for a malformed name
    groups = plan_batches(pipeline, rules, paths, dataset, service)
    reports = [
        pipeline.process(rule, files, explicit=True, refresh=refresh)
        for rule, files in groups.items()
    ]
    return report_json(reports, pipeline)


def report_json(reports: Sequence[BatchReport], pipeline: IngestPipeline) -> dict[str, Any]:
    """What the batches did, summed up (wire names in camelCase)."""
    trigger = pipeline.refresh_trigger
    jobs: list[dict[str, Any]] = []
    changed: dict[str, list[str]] = {}
    for report in reports:
        changed.update({name: wire_names(f) for name, f in report.changed.items()})
        for name in report.refreshed:
            job_id = None
            if isinstance(trigger, InProcessRefresh):
                job_id = trigger.last_job(*split_qualified(name))
            jobs.append({"service": name, "jobId": job_id})
    return {
        "datasets": sorted({r.dataset for r in reports}),
        "filesAdded": [p for r in reports for p in r.files_added],
        "itemsAdded": sum(r.items_added for r in reports),
        "replaced": [p for r in reports for p in r.replaced],
        "skipped": [p for r in reports for p in r.skipped],
        "deferred": [p for r in reports for p in r.deferred],
        "quarantined": [{"path": p, "reason": why} for r in reports for p, why in r.quarantined],
        "rejected": [{"path": p, "reason": why} for r in reports for p, why in r.rejected],
        "itemsRemoved": sum(r.removed for r in reports),
        "changed": changed,
        "refreshJobs": jobs,
        "notes": [n for r in reports for n in r.notes],
    }


def _pipeline(request: Request) -> IngestPipeline:
    pipeline = app_context(request).pipeline
    if pipeline is None:
        raise LiveMosaicError(
            "The ingest pipeline is not running (the server is starting or stopping).",
            next_step="Retry in a moment.",
        )
    return pipeline


@router.api_route(INGEST_PATH, methods=["GET", "POST"])
async def ingest(request: Request) -> Response:
    """``{root}/livemosaic/ingest``: add files through the pipeline; a JSON report."""
    params = await read_params(request)
    principal = require_role(current_principal(request), ROLE)
    if request.method != "POST":
        raise NotSupported(
            "ingest changes the catalog: send it as POST.",
            next_step="POST paths, dataset, service, refresh and f=json as a form.",
        )
    parse_choice(params.f, "f", FORMATS, "json")
    paths = parse_paths(params.get("paths"))
    dataset = (params.get("dataset") or "").strip() or None
    service = (params.get("service") or "").strip() or None
    refresh = parse_bool(params.get("refresh"), "refresh", False)
    pipeline = for_caller(_pipeline(request), principal.username or "anonymous")
    rules = list(app_context(request).watch_rules)
    report = await asyncio.to_thread(run_ingest, pipeline, rules, paths, dataset, service, refresh)
    return json_response(request, params, report)


def quarantine_json(pipeline: IngestPipeline, dataset: str | None, limit: int) -> dict[str, Any]:
    """At most ``limit`` quarantined files (of one dataset, or all) with their reasons."""
    entries = pipeline.journal.entries(dataset, "quarantined", limit=limit + 1)
    return {
        "files": [
            {
                "dataset": e.dataset,
                "path": e.path,
                "reason": e.reason,
                "movedTo": e.moved_to,
                "size": e.size,
                "time": e.updated,
            }
            for e in entries[:limit]
        ],
        "exceededTransferLimit": len(entries) > limit,
    }


@router.api_route(QUARANTINE_PATH, methods=["GET", "POST"])
async def quarantine(request: Request) -> Response:
    """``{root}/livemosaic/quarantine``: files that could not be ingested, and why."""
    params: Params = await read_params(request)
    require_role(current_principal(request), ROLE)
    parse_choice(params.f, "f", FORMATS, "json")
    dataset = (params.get("dataset") or "").strip() or None
    cap = app_context(request).settings.max_record_count
    limit = min(
        parse_int(params.get("resultRecordCount"), "resultRecordCount", cap, minimum=1), cap
    )
    pipeline = _pipeline(request)
    data = await asyncio.to_thread(quarantine_json, pipeline, dataset, limit)
    return json_response(request, params, data)


__all__ = [
    "INGEST_PATH",
    "QUARANTINE_PATH",
    "for_caller",
    "parse_paths",
    "plan_batches",
    "quarantine_json",
    "report_json",
    "router",
    "run_ingest",
]
