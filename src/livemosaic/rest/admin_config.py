"""The admin service configuration JSON (spec 9.3) and its translation to service definitions.

``properties`` values are strings on the way out (``"true"``, ``"4100"``); on the way in JSON
booleans and numbers are accepted and normalised to strings. ``properties.path`` names the
mosaic dataset as ``livemosaic:<dataset>``. ArcGIS framework keys (instances, timeouts, …)
are stored as given and otherwise ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from livemosaic.core.models import ServiceDefinition
from livemosaic.errors import InvalidParameter
from livemosaic.rest.params import parse_json

PATH_PREFIX = "livemosaic:"
FRAMEWORK_DEFAULTS: dict[str, Any] = {
    "provider": "ArcObjects11",
    "clusterName": "default",
    "minInstancesPerNode": 1,
    "maxInstancesPerNode": 2,
    "instancesPerContainer": 1,
    "maxWaitTime": 60,
    "maxStartupTime": 300,
    "maxIdleTime": 1800,
    "maxUsageTime": 600,
    "loadBalancing": "ROUND_ROBIN",
    "isolationLevel": "HIGH",
}
LATER_DEFAULTS: dict[str, Any] = {
    "recycleInterval": 24,
    "recycleStartTime": "00:00",
    "keepAliveInterval": 1800,
    "isDefault": False,
    "maxUploadFileSize": 0,
    "allowedUploadFileTypes": "",
}
# keys that map onto ServiceDefinition fields (everything else is stored in ``config``)
MODELLED = frozenset(
    {"serviceName", "type", "description", "capabilities", "configuredState", "private",
     "properties", "folderName"}
)  # fmt: skip
ACCEPTED = 'a JSON object such as {"serviceName": "Name", "type": "ImageServer", "properties": {"path": "livemosaic:dataset"}}'


def property_text(value: Any) -> str:
    """A property value as the string ArcGIS stores (booleans lower-case, objects as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0", ""):
        return False
    raise InvalidParameter("service", f"'{name}' must be true or false, not '{value}'.")


def config_json(d: ServiceDefinition) -> dict[str, Any]:
    """The admin configuration JSON of an image service."""
    props = {str(k): property_text(v) for k, v in d.properties.items()}
    props["path"] = f"{PATH_PREFIX}{d.dataset}"
    props["hasLiveData"] = "true" if d.has_live_data else "false"
    if d.copyright:
        props["copyright"] = d.copyright
    out: dict[str, Any] = {
        "serviceName": d.name,
        "type": "ImageServer",
        "description": d.description,
        "capabilities": d.capabilities,
        **FRAMEWORK_DEFAULTS,
        "configuredState": d.configured_state,
        **LATER_DEFAULTS,
        "private": d.private,
    }
    for key, value in d.config.items():
        if key not in MODELLED:
            out[key] = value
    out["properties"] = props
    out.setdefault("extensions", [])
    out.setdefault("frameworkProperties", {})
    out.setdefault("datasets", [])
    return out


def parse_service_json(text: str | None) -> dict[str, Any]:
    """The ``service`` parameter: a JSON object (InvalidParameter otherwise)."""
    if not text:
        raise InvalidParameter("service", "is required.", accepted=ACCEPTED)
    value = parse_json(text, "service", ACCEPTED)
    if not isinstance(value, dict):
        raise InvalidParameter("service", "must be a JSON object.", accepted=ACCEPTED)
    return value


def dataset_of_path(path: str) -> str:
    """The dataset named by ``livemosaic:<dataset>``."""
    if not path.lower().startswith(PATH_PREFIX) or not path[len(PATH_PREFIX) :].strip():
        raise InvalidParameter(
            "service",
            f"properties.path '{path}' does not name a mosaic dataset.",
            accepted="livemosaic:<dataset name>",
        )
    return path[len(PATH_PREFIX) :].strip()


def definition_from_config(
    config: Mapping[str, Any], folder: str, current: ServiceDefinition | None = None
) -> ServiceDefinition:
    """A service definition from configuration JSON (``current`` fills keys left out)."""
    name = config.get("serviceName")
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter("service", "serviceName is required.", accepted=ACCEPTED)
    kind = str(config.get("type", "ImageServer"))
    if kind.lower() != "imageserver":
        raise InvalidParameter(
            "service", f"type '{kind}' cannot be published here.", accepted="ImageServer"
        )
    raw_props = config.get("properties", {})
    if not isinstance(raw_props, dict):
        raise InvalidParameter("service", "properties must be a JSON object.", accepted=ACCEPTED)
    props = {str(k): property_text(v) for k, v in raw_props.items()}
    path = props.pop("path", "") or (f"{PATH_PREFIX}{current.dataset}" if current else "")
    if not path:
        raise InvalidParameter(
            "service", "properties.path is required.", accepted="livemosaic:<dataset name>"
        )
    props["hasLiveData"] = (
        "true" if _flag(props.get("hasLiveData", "false"), "hasLiveData") else "false"
    )
    copyright_ = props.pop("copyright", current.copyright if current else "")
    capabilities = str(config.get("capabilities", current.capabilities if current else ""))
    if not capabilities.strip():
        capabilities = "Image,Metadata,Catalog"
    state: Literal["STARTED", "STOPPED"] = "STARTED"
    if current is not None:
        state = current.configured_state
    elif str(config.get("configuredState", "STARTED")).upper() == "STOPPED":
        state = "STOPPED"
    return ServiceDefinition(
        name=name.strip(),
        dataset=dataset_of_path(path),
        folder=folder,
        description=str(config.get("description", current.description if current else "")),
        copyright=copyright_,
        capabilities=capabilities,
        configured_state=state,
        private=_flag(config.get("private", current.private if current else False), "private"),
        properties=props,
        config={k: v for k, v in config.items() if k not in MODELLED},
    )


__all__ = [
    "PATH_PREFIX",
    "config_json",
    "dataset_of_path",
    "definition_from_config",
    "parse_service_json",
    "property_text",
]
