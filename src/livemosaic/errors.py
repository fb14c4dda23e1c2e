"""The livemosaic error tree.

Every failure a user can cause or see is a :class:`LiveMosaicError`. Each carries the ArcGIS
error ``code`` it maps to, a short ``message`` for users, optional ``details`` and the next
step to take. Adapters translate library exceptions (rasterio, sqlite3, psycopg) into these
classes at their boundary, so the REST layer maps exactly one tree::

    LiveMosaicError
    ├── InvalidParameter (ValueError)        400  a request or CLI argument is malformed
    ├── LimitExceeded (ValueError)           400  a documented limit was passed
    ├── NotSupported (ValueError)            400  the operation or value is not implemented
    ├── NotFound (LookupError)               404
    │   ├── DatasetNotFound
    │   ├── ServiceNotFound
    │   ├── FolderNotFound
    │   └── ItemNotFound
    ├── AlreadyExists (ValueError)           400
    ├── RasterRejected (ValueError)          400  a file cannot be added to a catalog
    │   └── RasterRefused                         it would read outside the data folders
    ├── PathNotAllowed (PermissionError)     403  a path outside the registered data folders
    ├── Forbidden (PermissionError)          403  signed in, but the role or grant is too low
    │   └── InsecureTransport                     credentials over plain HTTP to a remote address
    ├── TokenInvalid (PermissionError)       498  a token is forged, expired, revoked or misbound
    ├── TokenRequired (PermissionError)      499  a secured resource was asked for without a token
    ├── ServerBusy (RuntimeError)            503  no room for the request now (sent with HTTP 503
    │                                             and Retry-After whatever the status policy)
    ├── RequestCancelled (TimeoutError)      504  the deadline passed or the client went away
    ├── RasterUnavailable (OSError)          500  a catalogued file cannot be read any more
    ├── ServiceStopped (RuntimeError)        500  the service is configured but not started
    └── StoreError (RuntimeError)            500  the catalog database failed
"""

from __future__ import annotations

from collections.abc import Sequence

UNABLE = "Unable to complete operation."


class LiveMosaicError(Exception):
    """Root of every livemosaic error: an ArcGIS code, a user message, details, a next step."""

    code: int = 500
    default_message: str = UNABLE

    def __init__(
        self,
        reason: str,
        *,
        details: Sequence[str] = (),
        next_step: str | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message or self.default_message
        self.details = [reason, *details] if reason else list(details)
        self.next_step = next_step
        if next_step:
            self.details.append(next_step)

    def __str__(self) -> str:
        text = self.reason
        if self.next_step:
            text = f"{text} {self.next_step}"
        return text


class InvalidParameter(LiveMosaicError, ValueError):
    """A request parameter or argument is malformed; the reason names it and the accepted form."""

    code = 400

    def __init__(self, parameter: str, reason: str, *, accepted: str | None = None) -> None:
        text = f"Invalid value for '{parameter}': {reason}"
        if accepted:
            text += f" Accepted form: {accepted}."
        super().__init__(text)
        self.parameter = parameter


class LimitExceeded(LiveMosaicError, ValueError):
    """A documented limit (image size, record count, body size, …) was passed."""

    code = 400


class NotSupported(LiveMosaicError, ValueError):
    """The operation or the value asked for is not supported by this server or service."""

    code = 400
    default_message = "Requested operation is not supported by this service."


class NotFound(LiveMosaicError, LookupError):
    """A named resource does not exist."""

    code = 404


class DatasetNotFound(NotFound):
    """No mosaic dataset has that name."""

    default_message = "Mosaic dataset not found."


class ServiceNotFound(NotFound):
    """No service has that folder and name."""

    default_message = "Service not found."


class FolderNotFound(NotFound):
    """No folder has that name."""

    default_message = "Folder not found."


class ItemNotFound(NotFound):
    """No catalog item has that id."""

    default_message = "Item not found."


class AlreadyExists(LiveMosaicError, ValueError):
    """Something with that name exists already."""

    code = 400


class RasterRejected(LiveMosaicError, ValueError):
    """A file could not be added: it cannot be opened, read or georeferenced."""

    code = 400

    def __init__(self, path: str, reason: str, *, next_step: str | None = None) -> None:
        super().__init__(f"{path}: {reason}", next_step=next_step)
        self.path = path


class RasterRefused(RasterRejected):
    """A raster that would make GDAL read outside the registered data folders (a VRT source,
    sidecar, archive or network location elsewhere); refused before anything is opened."""


class PathNotAllowed(LiveMosaicError, PermissionError):
    """A path lies outside every registered data folder."""

    code = 403

    def __init__(self, path: str, *, kind: str = "data folder") -> None:
        if kind == "data folder":
            hint = "Add its folder to LIVEMOSAIC_DATA_FOLDERS (or --data-folder) and retry."
        else:
            hint = "Add its prefix to LIVEMOSAIC_OBJECT_STORE_PREFIXES and retry."
        super().__init__(f"{path} is not inside a registered {kind}.", next_step=hint)
        self.path = path


class RasterUnavailable(LiveMosaicError, OSError):
    """A catalogued raster could not be read at request time (moved, deleted, damaged).

    The user-facing reason never names server paths; ``path`` is for logs.
    """

    code = 500

    def __init__(self, path: str, cause: str) -> None:
        super().__init__("A raster of this service could not be read; the server log names it.")
        self.path = path
        self.cause = cause


class ServerBusy(LiveMosaicError, RuntimeError):
    """The server cannot take the request now (memory budget or queue full); retry later.

    Always answered with HTTP 503 and ``Retry-After: retry_after`` so that clients and proxies
    back off, whatever ``strict_http_status`` says.
    """

    code = 503
    default_message = "The server is busy; retry later."

    def __init__(self, reason: str, *, retry_after: int, next_step: str | None = None) -> None:
        super().__init__(reason, next_step=next_step)
        self.retry_after = max(1, int(retry_after))


class RequestCancelled(LiveMosaicError, TimeoutError):
    """The request's work was stopped: its deadline passed, or its client went away."""

    code = 504
    default_message = "The request timed out."


class ServiceStopped(LiveMosaicError, RuntimeError):
    """The service exists but is not started."""

    code = 500


class StoreError(LiveMosaicError, RuntimeError):
    """The catalog database failed; nothing was changed."""

    code = 500


FORBIDDEN = "You do not have permissions to access this resource or perform this operation."


class Forbidden(LiveMosaicError, PermissionError):
    """The caller is signed in but may not use this resource or operation."""

    code = 403
    default_message = FORBIDDEN


class InsecureTransport(Forbidden):
    """Passwords or tokens were sent over plain HTTP to a non-loopback address."""

    default_message = "Credentials and tokens must be sent over HTTPS."


class TokenInvalid(LiveMosaicError, PermissionError):
    """A token is malformed, forged, expired, revoked or bound to another referer or address."""

    code = 498
    default_message = "Invalid Token"


class TokenRequired(LiveMosaicError, PermissionError):
    """A secured resource was requested without a token."""

    code = 499
    default_message = "Token Required"
