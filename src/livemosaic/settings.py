"""Configuration: one ``Settings`` class fed by the environment (``LIVEMOSAIC_…``), an optional
``.env`` file, then CLI flags. Built once by the CLI or ``create_app`` and passed down; nothing
reads it at import time. Every limit is a setting with a default and a help line; each one is
documented in ``docs/configuration.md`` (a test keeps the two in step).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from livemosaic.core.objects import normalise_prefix

MIB = 1024 * 1024


def redact_url(url: str) -> str:
    """A URL with its password replaced by ``***``, for messages, logs and ``config``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def physical_memory_bytes() -> int:
    """The machine's physical memory (4 GiB when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 4096 * MIB


class Settings(BaseSettings):
    """Effective livemosaic configuration."""

    model_config = SettingsConfigDict(
        env_prefix="LIVEMOSAIC_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Field(
        Path("data"),
        description="Folder for the catalog database, export outputs and server state.",
    )
    catalog_url: str = Field(
        "",
        description="Catalog store URL: sqlite:///path/catalog.db (default: <data_dir>/catalog.db) "
        "or postgresql://user:password@host:5432/database (an existing database, shared by "
        "every server node; its tables are created on first use).",
    )
    data_folders: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders rasters may be added from (comma-separated in the environment). "
        "Anything outside them is refused.",
    )
    object_store_prefixes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="GDAL network locations rasters may be read from, e.g. "
        "/vsis3/bucket/rasters/ (comma-separated in the environment). Empty: no raster is "
        "read over the network.",
    )
    object_store_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest time GDAL waits for one network read from an allowed "
        "object-store prefix.",
    )
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8080, description="Port the server listens on.")
    root: str = Field("arcgis", description="Instance root: the first URL path segment.")
    current_version: float = Field(11.1, description="ArcGIS version advertised to clients.")
    max_image_width: int = Field(15000, description="Largest exportImage width in pixels.")
    max_image_height: int = Field(4100, description="Largest exportImage height in pixels.")
    max_record_count: int = Field(1000, description="Largest page of query results.")
    max_mosaic_image_count: int = Field(
        20, description="Most catalog items composited into one exportImage response."
    )
    max_sample_count: int = Field(1000, description="Most sample points per getSamples request.")
    max_request_body_bytes: int = Field(
        10 * 1024 * 1024, description="Largest accepted request body (POST) in bytes."
    )
    max_where_length: int = Field(20000, description="Longest accepted where clause in characters.")
    output_ttl_seconds: int = Field(
        900, description="How long exportImage f=json outputs stay downloadable."
    )
    read_threads: int = Field(
        2,
        description="Threads reading and encoding rasters in each server process (GDAL work "
        "runs off the event loop), and so how many image requests one process works on at once. "
        "2 on purpose: on 2 cores, 4 threads did no better on most requests and took up to 1.8x "
        "the CPU per heavy image under load; raise it for rasters on network storage or object "
        "stores, where reads wait (figures in docs/performance.md).",
    )
    request_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="Longest time one request may work once admitted (reading, composing, "
        "encoding); past it the work is stopped and the client gets error 504.",
    )
    request_memory_mb: int = Field(
        1536,
        ge=1,
        description="Largest estimated memory in MiB one image request may take; larger "
        "requests get error 400 saying what to ask for instead.",
    )
    memory_budget_mb: int = Field(
        0,
        ge=0,
        description="Estimated memory in MiB all admitted requests of one server process may "
        "hold together (0 = a quarter of the machine's memory, shared among --workers).",
    )
    admission_wait_seconds: float = Field(
        10.0,
        ge=0,
        description="Longest time a request waits for room in the memory budget before it "
        "is answered 503 (busy) with Retry-After.",
    )
    max_waiting_requests: int = Field(
        64,
        ge=0,
        description="Requests that may wait for room in the memory budget at once; more are "
        "answered 503 (busy) at once.",
    )
    busy_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After (seconds) sent with 503 busy answers."
    )
    trim_after_mb: int = Field(
        64,
        ge=0,
        description="After a request whose pixels are estimated at this many MiB or more "
        "(the fixed allowance of every request not counted), freed heap memory is handed "
        "back to the operating system (glibc malloc_trim; 0 = never).",
    )
    trim_every_seconds: float = Field(
        1.0,
        ge=0,
        description="Besides, at most this often a finished request hands freed heap memory "
        "back, so that many small requests do not leave the heap grown (0 = only after "
        "large requests).",
    )
    strict_http_status: bool = Field(
        False, description="Send errors with their HTTP status instead of 200 (ArcGIS default)."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Origins whose pages may read responses (CORS; comma-separated in the "
        "environment): '*' lets every origin read without credentials (no cookies); an "
        "origin listed as scheme://host[:port] may also send credentials.",
    )
    gdal_cache_mb: int = Field(
        192, ge=1, description="GDAL raster block cache in MiB, per server process."
    )
    default_token_minutes: int = Field(
        60,
        ge=1,
        description="Token lifetime when generateToken gets no expiration "
        "(also advertised as shortLivedTokenValidity).",
    )
    max_token_minutes: int = Field(
        1440, ge=1, description="Longest token lifetime in minutes (longer requests are clamped)."
    )
    allow_get_token: bool = Field(
        False, description="Accept generateToken by GET (credentials in URLs; development only)."
    )
    referer_binding: Literal["strict", "lenient", "off"] = Field(
        "strict",
        description="How referer-bound tokens are checked: strict (the Referer, else the "
        "Origin, must be the bound URL or a page below it: same scheme, host and port, path "
        "on segment boundaries), lenient (mismatch logged, accepted) or off.",
    )
    allow_http_credentials: bool = Field(
        False,
        description="Accept passwords and tokens over plain HTTP to a non-loopback address "
        "(refused by default: use HTTPS).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Proxy addresses whose X-Forwarded-Proto/Host/For headers are believed "
        "(comma-separated in the environment).",
    )
    signin_max_failures: int = Field(
        5,
        ge=1,
        description="Failed sign-ins of one user from one address before further attempts "
        "are refused for the rest of the window.",
    )
    signin_window_seconds: int = Field(
        300, ge=1, description="Sliding window in seconds for counting failed sign-ins."
    )
    snapshot_poll_seconds: float = Field(
        0.5,
        gt=0,
        description="With the local event bus, how often each server process checks the "
        "catalog for snapshots published by another process (refreshes, admin edits); a "
        "PostgreSQL event bus needs no polling, except while its connection is lost.",
    )
    event_bus: str = Field(
        "",
        description="Where server processes tell each other about refreshes and new items: "
        "'local' (this process only; others follow by polling) or a postgresql:// URL "
        "(LISTEN/NOTIFY). Empty: the catalog's database when catalog_url is PostgreSQL, "
        "else 'local'.",
    )
    event_channel: str = Field(
        "livemosaic_events",
        min_length=1,
        max_length=63,
        description="The PostgreSQL NOTIFY channel of the event bus (servers sharing a "
        "catalog must use the same one).",
    )
    job_retention_hours: float = Field(
        24.0, ge=24.0, description="How long finished geoprocessing jobs are kept (at least 24)."
    )
    watch_config: Path | None = Field(
        None,
        description="TOML file of watch rules: serve watches these folders in-process "
        "(serve --watch; format in docs/watching.md).",
    )
    notify_queue_size: int = Field(
        32,
        ge=1,
        description="Messages queued per notification WebSocket client; when full the "
        "oldest is dropped and the client is told it lagged.",
    )
    notify_heartbeat_seconds: float = Field(
        15.0, gt=0, description="Seconds between heartbeats sent to idle notification clients."
    )
    notify_max_lag_seconds: float = Field(
        30.0,
        gt=0,
        description="A notification client that keeps losing messages for longer than this "
        "is disconnected.",
    )
    notify_token_check_seconds: float = Field(
        10.0,
        gt=0,
        description="How often the tokens of notification clients are checked again; a "
        "client whose token expired or was revoked is disconnected (code 4498).",
    )
    ssl_certfile: Path | None = Field(
        None, description="TLS certificate (PEM) for serving HTTPS (serve --certfile)."
    )
    ssl_keyfile: Path | None = Field(
        None, description="TLS private key (PEM) for serving HTTPS (serve --keyfile)."
    )

    @field_validator(
        "data_folders", "trusted_proxies", "cors_origins", "object_store_prefixes", mode="before"
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        """Lists from the environment: a JSON array or a comma-separated string."""
        if isinstance(value, str):
            if value.startswith("["):
                return json.loads(value)
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("object_store_prefixes")
    @classmethod
    def _vsi_prefixes(cls, value: list[str]) -> list[str]:
        """Each prefix names a GDAL network file system and ends with '/' (a folder)."""
        out = []
        for prefix in value:
            name = normalise_prefix(prefix)
            if not name.startswith("/vsi") or name.count("/") < 3:
                raise ValueError(
                    f"object-store prefix {prefix!r} must be s3://bucket/folder/ or a GDAL "
                    "network path such as /vsis3/bucket/folder/"
                )
            out.append(name)
        return out

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        """Each entry is '*' or an origin: scheme://host[:port], nothing after it."""
        for origin in value:
            text = origin.strip().rstrip("/")
            scheme, sep, rest = text.partition("://")
            if text == "*" or (sep and scheme in ("http", "https") and rest and "/" not in rest):
                continue
            raise ValueError(
                f"cors_origins entry {origin!r} is not '*' or an origin such as "
                "https://app.example.org (scheme://host[:port], no path)"
            )
        return value

    @field_validator("root")
    @classmethod
    def _one_segment(cls, value: str) -> str:
        value = value.strip("/")
        if not value or "/" in value:
            raise ValueError("root must be exactly one URL path segment, e.g. 'arcgis'")
        return value

    @property
    def effective_catalog_url(self) -> str:
        """The catalog URL, defaulting to SQLite inside the data folder."""
        if self.catalog_url:
            return self.catalog_url
        return f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def memory_budget_bytes(self) -> int:
        """The admission budget of this process: ``memory_budget_mb``, else a quarter of the
        machine's physical memory; never below one request's limit."""
        budget = self.memory_budget_mb * MIB
        if budget <= 0:
            budget = physical_memory_bytes() // 4
        return max(budget, self.request_memory_mb * MIB)

    @property
    def output_dir(self) -> Path:
        """Where exportImage f=json outputs are written."""
        return self.data_dir / "output"
