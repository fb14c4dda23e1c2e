"""A small Python client for a livemosaic (or ArcGIS) server: tokens, service info, Refresh Service.

:class:`LiveMosaicClient` signs in with ``generateToken`` (bound to its own referer, the
instance root URL, which it then sends as ``Referer`` on every request), sends the token in
the ``X-Esri-Authorization`` header, renews it shortly before it expires and signs in again
once when the server answers 498 Invalid Token. Its :meth:`~LiveMosaicClient.refresh_service`
mirrors arcpy's ``RefreshService(serviceName, serviceType, serviceFolder, refreshOptions)``:
``"#"`` stands for a default, the job is submitted and polled with exponential back-off, and
a job that does not succeed raises :class:`RefreshServiceError` with the job's messages::

    with LiveMosaicClient("https://img.example.org/arcgis", "ops", password) as client:
        changes = client.refresh_service("Sentinel2", folder="Live")
        print(changes["changed"])

:meth:`~LiveMosaicClient.ingest` pushes files through the server's ingest pipeline (the
livemosaic extension ``{root}/livemosaic/ingest``), like ``livemosaic add`` does locally.

Errors: an ArcGIS error envelope (or an HTTP failure) raises :class:`RemoteError`, carrying
the server's code, message and details; both classes are :class:`~livemosaic.errors.LiveMosaicError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from livemosaic.errors import LiveMosaicError

GP_SERVICE = "System/PublishingTools/GPServer"
REFRESH_TASK = "Refresh Service"
RESULT_PARAM = "refreshResults"
INGEST_PATH = "livemosaic/ingest"
QUARANTINE_PATH = "livemosaic/quarantine"
DEFAULT_ROOT = "arcgis"
TOKEN_MINUTES = 60
RENEW_MARGIN_MS = 120_000  # renew a token this long before it expires …
RENEW_FRACTION = 0.1  # … or after 90 % of its life, whichever comes first
FIRST_DELAY = 0.1
MAX_DELAY = 2.0
TERMINAL = frozenset(
    {"esriJobSucceeded", "esriJobFailed", "esriJobTimedOut", "esriJobCancelled", "esriJobDeleted"}
)
NEXT_STEPS = {
    498: "Sign in again (the token expired, was revoked or is bound to another referer).",
    499: "Sign in: give a username and password (LIVEMOSAIC_USERNAME / LIVEMOSAIC_PASSWORD).",
    403: "Use an account with a higher role (Refresh Service needs publisher or administrator).",
}


class RemoteError(LiveMosaicError):
    """The server answered with an ArcGIS error envelope, or the HTTP exchange failed.

    ``code`` is the envelope's code (498 Invalid Token, 499 Token Required, 403, 404, 400, …)
    or the HTTP status; ``server_message`` and ``server_details`` are the server's words.
    """

    def __init__(
        self,
        code: int,
        server_message: str,
        details: list[str] | None = None,
        *,
        url: str = "",
    ) -> None:
        details = list(details or [])
        reason = f"{server_message} (code {code})" if code else server_message
        if details:
            reason += ": " + " ".join(details)
        super().__init__(reason, message=server_message, next_step=NEXT_STEPS.get(code))
        self.code = code
        self.server_message = server_message
        self.server_details = details
        self.url = url


@dataclass(frozen=True, slots=True)
class JobMessage:
    """One geoprocessing job message."""

    type: str  # esriJobMessageTypeInformative | …Warning | …Error | …
    description: str


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A geoprocessing job as the server reports it."""

    job_id: str
    status: str
    messages: tuple[JobMessage, ...] = ()
    results: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        """True once the job can change no more."""
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        """True when the job succeeded."""
        return self.status == "esriJobSucceeded"

    @property
    def errors(self) -> list[str]:
        """The descriptions of the job's error messages."""
        return [m.description for m in self.messages if m.type.endswith("Error")]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobInfo:
        """Parse a job resource (``{task}/jobs/{id}?f=json``)."""
        messages = tuple(
            JobMessage(str(m.get("type", "")), str(m.get("description", "")))
            for m in data.get("messages") or []
        )
        return cls(
            job_id=str(data.get("jobId", "")),
            status=str(data.get("jobStatus", "")),
            messages=messages,
            results=dict(data.get("results") or {}),
            inputs=dict(data.get("inputs") or {}),
        )


class RefreshServiceError(LiveMosaicError):
    """A Refresh Service job failed, was cancelled, timed out, or did not finish in time.

    ``job_id``, ``status`` and ``messages`` (every job message) tell what happened; the
    error messages of the job are the ``details``.
    """

    code = 500
    default_message = "Refresh Service failed."

    def __init__(self, job: JobInfo, reason: str | None = None) -> None:
        errors = job.errors
        text = reason or f"Refresh Service job {job.job_id} ended with {job.status}."
        super().__init__(
            text,
            details=errors,
            next_step=f"See the job with `livemosaic job show {job.job_id}`.",
        )
        self.job_id = job.job_id
        self.status = job.status
        self.messages = job.messages
        self.errors = errors

    def __str__(self) -> str:
        text = " ".join([self.reason, *self.errors])
        return f"{text} {self.next_step}" if self.next_step else text


def instance_root(url: str) -> str:
    """``scheme://host[:port]/<first path segment>`` of any URL on a server (``/arcgis`` if none)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteError(
            400,
            f"'{url}' is not an http(s) URL; give the server root, e.g. http://host:8080/arcgis",
        )
    segment = next((s for s in parts.path.split("/") if s), DEFAULT_ROOT)
    return f"{parts.scheme}://{parts.netloc}/{segment}"


def gp_value(value: str | None) -> str:
    """A GP parameter value with arcpy's ``"#"`` (and None) meaning "use the default"."""
    return "" if value is None or value.strip() == "#" else value


def options_text(options: Mapping[str, Any] | str | None) -> str:
    """``refreshOptions`` as sent: a JSON object, or empty for the default."""
    if options is None:
        return ""
    if isinstance(options, str):
        return gp_value(options)
    return json.dumps(dict(options))


class LiveMosaicClient:
    """Synchronous client of one server (``base_url``: its instance root or any URL under it)."""

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        verify: bool = True,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root = instance_root(base_url)
        self.username = username
        self._password = password
        self._token = token
        self._expires: int | None = None  # epoch ms; None = unknown (a token given as is)
        self._issued: int | None = None
        self._token_url: str | None = None
        self._sleep = sleep
        self._http = httpx.Client(
            verify=verify,
            timeout=timeout,
            transport=transport,
            headers={"Referer": self.root, "User-Agent": "livemosaic-client"},
            follow_redirects=True,
        )

    # -- plumbing ------------------------------------------------------------------------------

    def __enter__(self) -> LiveMosaicClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    @property
    def token(self) -> str | None:
        """The current token (None when anonymous)."""
        return self._token

    @property
    def token_expires(self) -> int | None:
        """When the current token expires (epoch ms), when known."""
        return self._expires

    def _url(self, path: str) -> str:
        return path if "://" in path else f"{self.root}/{path.lstrip('/')}"

    def _send(self, method: str, url: str, params: Mapping[str, Any], token: str | None) -> Any:
        data = {k: v for k, v in params.items() if v is not None}
        data.setdefault("f", "json")
        headers = {"X-Esri-Authorization": f"Bearer {token}"} if token else {}
        try:
            if method == "GET":
                response = self._http.get(url, params=data, headers=headers)
            else:
                response = self._http.post(url, data=data, headers=headers)
        except httpx.HTTPError as exc:  # no answer at all: code 0
            raise RemoteError(0, f"Cannot reach {url}: {exc}", url=url) from exc
        try:
            body = response.json()
        except ValueError:
            raise RemoteError(
                response.status_code,
                f"{url} answered HTTP {response.status_code} without JSON",
                [response.text[:200]] if response.text else [],
                url=url,
            ) from None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            details = err.get("details") or []
            raise RemoteError(
                int(err.get("code") or response.status_code),
                str(err.get("message") or "Error"),
                [str(d) for d in details] if isinstance(details, list) else [str(details)],
                url=url,
            )
        if response.status_code >= 400:
            raise RemoteError(response.status_code, f"HTTP {response.status_code}", url=url)
        return body

    def call(self, path: str, params: Mapping[str, Any] | None = None, method: str = "GET") -> Any:
        """Request a resource (path relative to the root) with the token; its JSON.

        A 498 answer makes the client sign in again once (when it has credentials).
        """
        url = self._url(path)
        self.renew_if_needed()
        try:
            return self._send(method, url, params or {}, self._token)
        except RemoteError as exc:
            if exc.code != 498 or not self._can_sign_in():
                raise
        self.sign_in()
        return self._send(method, url, params or {}, self._token)

    # -- tokens --------------------------------------------------------------------------------

    def _can_sign_in(self) -> bool:
        return bool(self.username) and self._password is not None

    def renew_if_needed(self, now: int | None = None) -> bool:
        """Sign in when there is no token yet or it expires soon; True when it signed in.

        "Soon" is within two minutes, or within the last tenth of the token's life for short
        tokens. ``now`` (epoch ms) defaults to the clock. Tokens given to the constructor
        are used as they are (the client cannot renew them).
        """
        if not self._can_sign_in():
            return False
        if self._token is None:
            self.sign_in()
            return True
        if self._expires is None or self._issued is None:
            return False  # a token given as is: kept until the server refuses it (498)
        current = int(time.time() * 1000) if now is None else now
        life = self._expires - self._issued
        if current >= self._expires - min(RENEW_MARGIN_MS, int(life * RENEW_FRACTION)):
            self.sign_in()
            return True
        return False

    def token_url(self) -> str:
        """Where to POST credentials: ``authInfo.tokenServicesUrl`` of ``rest/info``."""
        if self._token_url is None:
            self._token_url = self._find_token_url()
        return self._token_url

    def _find_token_url(self) -> str:
        try:
            info = self._send("GET", self._url("rest/info"), {}, None)
        except RemoteError:
            info = {}
        auth = info.get("authInfo") if isinstance(info, dict) else None
        if isinstance(auth, dict) and auth.get("tokenServicesUrl"):
            return str(auth["tokenServicesUrl"])
        return self._url("tokens/generateToken")

    def sign_in(self, expiration: int = TOKEN_MINUTES) -> str:
        """Get a token for the username and password (bound to this client's referer)."""
        if not self._can_sign_in():
            raise RemoteError(499, "Cannot sign in without a username and password", url=self.root)
        params = {
            "username": self.username,
            "password": self._password,
            "client": "referer",
            "referer": self.root,
            "expiration": str(expiration),
            "f": "json",
        }
        issued = int(time.time() * 1000)
        data = self._send("POST", self.token_url(), params, None)
        if not isinstance(data, dict) or not data.get("token"):
            raise RemoteError(500, "generateToken answered without a token", url=self.root)
        self._token = str(data["token"])
        expires = data.get("expires")
        self._expires = int(expires) if expires is not None else None
        self._issued = issued
        return self._token

    # -- resources -----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """``{root}/rest/info``: version and authentication information."""
        return dict(self._send("GET", self._url("rest/info"), {}, None))

    def service_info(
        self, name: str, service_type: str = "ImageServer", folder: str | None = None
    ) -> dict[str, Any]:
        """A service's JSON (``name`` may be ``Folder/Name``)."""
        folder = gp_value(folder).strip("/")
        qualified = f"{folder}/{name}" if folder else name
        return dict(self.call(f"rest/services/{qualified}/{service_type}"))

    def _task_path(self) -> str:
        return f"rest/services/{GP_SERVICE}/{quote(REFRESH_TASK)}"

    def submit_refresh(
        self,
        name: str,
        service_type: str = "ImageServer",
        folder: str | None = None,
        options: Mapping[str, Any] | str | None = None,
    ) -> str:
        """Submit a Refresh Service job; its job id."""
        params = {
            "serviceName": name,
            "serviceType": gp_value(service_type) or "ImageServer",
            "serviceFolder": gp_value(folder),
            "refreshOptions": options_text(options),
        }
        data = self.call(f"{self._task_path()}/submitJob", params, method="POST")
        job_id = data.get("jobId") if isinstance(data, dict) else None
        if not job_id:
            raise RemoteError(500, "submitJob answered without a jobId", [str(data)[:200]])
        return str(job_id)

    def job(self, job_id: str, *, messages: bool = True) -> JobInfo:
        """A Refresh Service job's status, messages and result links."""
        params = {"returnMessages": "true" if messages else "false"}
        return JobInfo.from_json(self.call(f"{self._task_path()}/jobs/{quote(job_id)}", params))

    def job_result(self, job_id: str, param: str = RESULT_PARAM) -> Any:
        """The ``value`` of a job's result parameter (``refreshResults`` by default)."""
        data = self.call(f"{self._task_path()}/jobs/{quote(job_id)}/results/{quote(param)}")
        return data.get("value") if isinstance(data, dict) else None

    def wait(self, job_id: str, timeout: float = 60.0) -> JobInfo:
        """Poll a job (0.1 s, doubling to 2 s) until it ends; RefreshServiceError after ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = FIRST_DELAY
        while True:
            job = self.job(job_id)
            if job.terminal:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise RefreshServiceError(
                    job, f"Refresh Service job {job_id} is still {job.status} after {timeout:g} s."
                )
            self._sleep(min(delay, left))
            delay = min(delay * 2, MAX_DELAY)

    def refresh_service(
        self,
        name: str,
        service_type: str = "ImageServer",
        folder: str | None = None,
        options: Mapping[str, Any] | str | None = None,
        *,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Refresh a live service (arcpy's RefreshService); the parsed ``refreshResults``.

        ``"#"`` (or None) for ``service_type``, ``folder`` or ``options`` means the default.
        Raises RefreshServiceError (with the job's messages) unless the job succeeds.
        """
        job = self.wait(self.submit_refresh(name, service_type, folder, options), timeout)
        if not job.succeeded:
            raise RefreshServiceError(job)
        value = self.job_result(job.job_id)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise RefreshServiceError(
                    job, f"Job {job.job_id} succeeded but refreshResults is not JSON: {value[:200]}"
                ) from None
        if not isinstance(value, dict):
            raise RefreshServiceError(job, f"Job {job.job_id} succeeded without refreshResults.")
        return value

    # -- ingest ----------------------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[str | PathLike[str]],
        dataset: str | None,
        service: str | None = None,
        refresh: bool = False,
    ) -> dict[str, Any]:
        """Add files or folders through the server's ingest pipeline; the server's report.

        ``POST {root}/livemosaic/ingest`` with a publisher token. Paths are as the server sees
        them and must lie inside its data folders (403 otherwise). ``dataset`` may be None for
        files inside a folder the server watches. With ``refresh``, Refresh Service is
        submitted for each service whose info changed (``refreshJobs`` in the report).
        """
        params = {
            "paths": json.dumps([str(p) for p in paths]),
            "dataset": dataset,
            "service": service,
            "refresh": "true" if refresh else "false",
        }
        return dict(self.call(INGEST_PATH, params, method="POST"))

    def quarantined(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Files the server could not ingest, with the reason (``{root}/livemosaic/quarantine``)."""
        data = self.call(QUARANTINE_PATH, {"dataset": dataset})
        files = data.get("files") if isinstance(data, dict) else None
        return [dict(f) for f in files or []]


__all__ = [
    "JobInfo",
    "JobMessage",
    "LiveMosaicClient",
    "RefreshServiceError",
    "RemoteError",
    "gp_value",
    "instance_root",
    "options_text",
]
