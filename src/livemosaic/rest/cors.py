"""Which foreign origins may read responses, and with credentials or without (``cors_origins``).

``*`` lets every origin read responses *without credentials*: the answer says
``Access-Control-Allow-Origin: *`` and never ``Access-Control-Allow-Credentials``, so a
browser sends no cookies and exposes nothing a page of another site could not fetch
anonymously. That is what ArcGIS clients in the browser (ArcGIS Maps SDK for JavaScript,
esri-leaflet, OpenLayers) need: they send tokens as ``token=`` or in a header, not as
cookies. An origin listed by name (``https://app.example.org``) gets its own origin back and
``Access-Control-Allow-Credentials: true``: list the sites whose pages send credentialed
requests (``withCredentials``, ArcGIS JS ``trustedServers``). Same-origin pages (the live
viewer) need no CORS at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WILDCARD = "*"


def normalize_origin(origin: str) -> str:
    """An origin as compared: lower case, no trailing slash."""
    return origin.strip().rstrip("/").lower()


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """The ``cors_origins`` setting, decided in one place for HTTP and the WebSocket."""

    listed: frozenset[str]
    any_origin: bool

    @classmethod
    def of(cls, origins: Sequence[str]) -> CorsPolicy:
        """The policy of a ``cors_origins`` list."""
        named = {normalize_origin(o) for o in origins if o.strip() != WILDCARD}
        return cls(frozenset(named), any(o.strip() == WILDCARD for o in origins))

    def credentialed(self, origin: str) -> bool:
        """True when ``origin`` is listed by name: it may send credentials."""
        return normalize_origin(origin) in self.listed

    def allows(self, origin: str) -> bool:
        """True when ``origin`` may read responses (with or without credentials)."""
        return self.any_origin or self.credentialed(origin)

    def headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers for a request from ``origin`` (none when it may not read)."""
        if not origin:
            return {}
        if self.credentialed(origin):
            return {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
            }
        if self.any_origin:
            return {"Access-Control-Allow-Origin": WILDCARD}
        return {}


__all__ = ["WILDCARD", "CorsPolicy", "normalize_origin"]
