"""Discovery resources (spec 2) and transport rules (spec 1) on the live server."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from livemosaic.app import create_app
from livemosaic.settings import Settings
from tests.rest.helpers import LiveServer, error_of, ok_json


def test_root_catalog_lists_folders_and_root_services(client: httpx.Client) -> None:
    body = ok_json(client.get("/arcgis/rest/services", params={"f": "json"}))
    assert body["currentVersion"] == 11.1
    assert "Live" in body["folders"]
    assert "System" not in body["folders"]  # PublishingTools is listed for publishers only
    names = {(s["name"], s["type"]) for s in body["services"]}
    for name in ("imagery", "dem", "ocean", "weather", "climate", "overlap", "stopped"):
        assert (name, "ImageServer") in names
    assert not any(s["name"].startswith("Live/") for s in body["services"])


def test_folder_catalog_prefixes_names_and_is_case_insensitive(client: httpx.Client) -> None:
    body = ok_json(client.get("/arcgis/rest/services/LIVE", params={"f": "json"}))
    assert body["folders"] == []
    assert {s["name"] for s in body["services"]} == {"Live/multicrs", "Live/ndvi"}
    assert all(s["type"] == "ImageServer" for s in body["services"])


def test_system_folder_is_secured(client: httpx.Client) -> None:
    err = error_of(client.get("/arcgis/rest/services/System", params={"f": "json"}))
    assert err["code"] == 499 and err["message"] == "Token Required"


def test_unknown_folder_is_404(client: httpx.Client) -> None:
    err = error_of(client.get("/arcgis/rest/services/NoSuchFolder", params={"f": "json"}))
    assert err["code"] == 404 and err["message"] == "Folder not found."


def test_rest_info(client: httpx.Client) -> None:
    body = ok_json(client.get("/arcgis/rest/info", params={"f": "json"}))
    assert body["currentVersion"] == 11.1
    assert body["fullVersion"] == "11.1.0"
    port = client.base_url.port
    assert body["authInfo"] == {
        "isTokenBasedSecurity": True,
        "tokenServicesUrl": f"http://127.0.0.1:{port}/arcgis/tokens/generateToken",
        "shortLivedTokenValidity": 60,
    }
    assert "owningSystemUrl" not in body


def test_root_info_is_a_404_envelope(client: httpx.Client) -> None:
    response = client.get("/arcgis/info", params={"f": "json"})
    assert response.status_code == 200
    assert error_of(response)["code"] == 404


def test_fixed_segments_case_insensitive_and_trailing_slash(client: httpx.Client) -> None:
    a = ok_json(client.get("/arcgis/rest/services", params={"f": "json"}))
    b = ok_json(client.get("/ARCGIS/Rest/SERVICES/", params={"f": "json"}))
    assert a == b
    info = ok_json(client.get("/arcgis/rest/services/IMAGERY/imageserver/", params={"f": "json"}))
    assert info["name"] == "imagery"


def test_pjson_is_pretty_and_json_compact(client: httpx.Client) -> None:
    compact = client.get("/arcgis/rest/services", params={"f": "json"})
    pretty = client.get("/arcgis/rest/services", params={"f": "pjson"})
    assert compact.headers["content-type"].startswith("application/json")
    assert pretty.headers["content-type"].startswith("application/json")
    assert "\n" not in compact.text and "\n" in pretty.text
    assert json.loads(compact.text) == json.loads(pretty.text)


def test_parameter_names_case_insensitive_last_wins_body_wins(client: httpx.Client) -> None:
    upper = client.get("/arcgis/rest/services?F=JSON")
    assert upper.json()["folders"]
    last = client.get("/arcgis/rest/services?f=html&F=json")
    assert last.headers["content-type"].startswith("application/json")
    posted = client.post("/arcgis/rest/services?f=html", data={"f": "json"})
    assert posted.headers["content-type"].startswith("application/json")
    multipart = client.post("/arcgis/rest/services", files={"f": (None, "pjson")})
    assert "\n" in multipart.text and multipart.json()["folders"]


def test_jsonp_with_dotted_callback(client: httpx.Client) -> None:
    cb = "window._EsriLeafletCallbacks.c3"
    r = client.get("/arcgis/rest/services", params={"f": "json", "callback": cb})
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.text.startswith(cb + "(") and r.text.endswith(");")
    assert json.loads(r.text[len(cb) + 1 : -2])["folders"]


def test_cors_headers_and_preflight(client: httpx.Client) -> None:
    origin = "https://app.example.org"
    r = client.get("/arcgis/rest/services", params={"f": "json"}, headers={"Origin": origin})
    # the default '*': any origin may read, without credentials (its Origin is not reflected)
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    assert "Origin" in r.headers["vary"]
    pre = client.options(
        "/arcgis/rest/services/imagery/ImageServer/exportImage",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "X-Esri-Authorization"},
    )  # fmt: skip
    assert pre.status_code == 200
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "X-Esri-Authorization" in pre.headers["access-control-allow-headers"]
    assert pre.headers["access-control-max-age"] == "3600"
    assert pre.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in pre.headers


def test_rest_redirects_to_services(client: httpx.Client) -> None:
    r = client.get("/arcgis/rest")
    assert r.status_code == 302 and r.headers["location"].endswith("/arcgis/rest/services")


def test_output_directory_unknown_file(client: httpx.Client, live: LiveServer) -> None:
    err = error_of(
        client.get("/arcgis/rest/directories/arcgisoutput/nothing/here.png", params={"f": "json"})
    )
    assert err["code"] == 404


def test_error_details_keep_the_client_spelling(client: httpx.Client) -> None:
    err = error_of(client.get("/arcgis/rest/services/NoSuchFolder", params={"f": "json"}))
    assert any("NoSuchFolder" in d for d in err["details"])
    err = error_of(
        client.get("/arcgis/rest/services/Live/MissingOne/ImageServer", params={"f": "json"})
    )
    assert any("Live/MissingOne.ImageServer" in d for d in err["details"])


def test_cors_allow_list(live: LiveServer) -> None:
    settings = live.settings.model_copy(update={"cors_origins": ["https://ok.example.org"]})
    plain = TestClient(create_app(settings, live.ctx))  # no lifespan: the shared context stays open
    ok = plain.get(
        "/arcgis/rest/services", params={"f": "json"}, headers={"Origin": "https://ok.example.org"}
    )
    assert ok.headers["access-control-allow-origin"] == "https://ok.example.org"
    assert ok.headers["access-control-allow-credentials"] == "true"  # listed by name
    other = plain.get(
        "/arcgis/rest/services", params={"f": "json"}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-credentials" not in other.headers
    assert "Origin" in other.headers["vary"]


def test_cors_wildcard_with_listed_origins(live: LiveServer) -> None:
    both = ["*", "https://ok.example.org/"]
    settings = live.settings.model_copy(update={"cors_origins": both})
    plain = TestClient(create_app(settings, live.ctx))
    for origin, allow, credentials in (
        ("https://OK.example.org", "https://OK.example.org", "true"),
        ("https://ok.example.org.evil.net", "*", None),
        ("null", "*", None),
    ):
        r = plain.get("/arcgis/rest/services", params={"f": "json"}, headers={"Origin": origin})
        assert r.headers["access-control-allow-origin"] == allow, origin
        assert r.headers.get("access-control-allow-credentials") == credentials, origin


@pytest.mark.parametrize("bad", ["https://a.org/app", "a.org", "ftp://a.org", "*.a.org"])
def test_cors_origins_must_be_origins(bad: str) -> None:
    with pytest.raises(ValueError, match="cors_origins"):
        Settings(cors_origins=[bad])
    with pytest.raises(ValueError, match="cors_origins"):
        Settings(cors_origins=f"https://fine.example.org,{bad}")
