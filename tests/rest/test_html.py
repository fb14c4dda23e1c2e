"""The HTML services directory: a person can browse from the root to every operation."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from tests.rest.helpers import LiveServer


class Page(HTMLParser):
    """Links, forms and their inputs of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.inputs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "form":
            self.forms.append(a)
        elif tag in ("input", "select", "textarea") and "name" in a:
            self.inputs.append(a["name"])
        elif tag == "img":
            self.images.append(a.get("src", ""))


def page(client: httpx.Client, url: str) -> tuple[Page, str]:
    r = client.get(url)
    assert r.status_code == 200, url
    assert r.headers["content-type"].startswith("text/html"), (url, r.headers["content-type"])
    p = Page()
    p.feed(r.text)
    return p, r.text


def test_browse_from_root_to_operations(client: httpx.Client, live: LiveServer) -> None:
    root, _ = page(client, "/arcgis/rest/services")
    live_folder = next(link for link in root.links if link.endswith("/rest/services/Live"))
    folder, _ = page(client, live_folder)
    ndvi = next(link for link in folder.links if "Live/ndvi/ImageServer" in link)
    service, text = page(client, ndvi)
    assert "ndvi" in text and "timeInfo" in text
    ops = {urlsplit(link).path.rsplit("/", 1)[-1]: link for link in service.links}
    for op in ("exportImage", "query", "identify", "getSamples", "keyProperties", "statistics"):
        assert op in ops, op
    expected_inputs = {
        "exportImage": {
            "bbox",
            "size",
            "imageSR",
            "format",
            "mosaicRule",
            "renderingRule",
            "time",
            "f",
        },
        "query": {"where", "outFields", "geometry", "returnGeometry", "orderByFields", "f"},
        "identify": {"geometry", "geometryType", "mosaicRule", "returnCatalogItems", "f"},
        "getSamples": {"geometry", "geometryType", "sampleCount", "sampleDistance", "f"},
    }
    for op, names in expected_inputs.items():
        form_page, _ = page(client, ops[op])
        assert form_page.forms and form_page.forms[0]["method"].lower() == "get"
        assert names <= set(form_page.inputs), (op, set(form_page.inputs))
    json_link = next(link for link in service.links if "f=json" in link)
    assert client.get(urljoin(live.base, json_link)).json()["name"] == "ndvi"


def test_forms_submit_and_show_results(client: httpx.Client, live: LiveServer) -> None:
    base = live.svc("imagery")
    query_page, text = page(client, base + "/query?where=1%3D1&outFields=Name&f=html")
    assert "&#34;features&#34;" in text or '"features"' in text
    export_page, _ = page(client, base + "/exportImage?size=64,64&format=png&f=html")
    assert export_page.images
    src = export_page.images[0].replace("&amp;", "&")
    params = dict(parse_qsl(urlsplit(src).query))
    assert params["f"] == "image" and params["size"] == "64,64"
    image = client.get(urljoin(live.base, src))
    assert image.content.startswith(b"\x89PNG")
    identify_page, text = page(client, live.svc("dem") + "/identify?geometry=0,0")
    assert "NoData" in text


def test_default_format_is_html_and_items_browse(client: httpx.Client, live: LiveServer) -> None:
    item = live.item_by_path("dem", live.data / "dem/dem.tif")
    item_page, text = page(client, live.svc("dem") + f"/{item.id}")
    assert any(link.endswith(f"/{item.id}/info") for link in item_page.links)
    assert any(link.endswith("/thumbnail") for link in item_page.links)
    info_page, _ = page(client, live.svc("dem") + f"/{item.id}/info")
    assert info_page.links


def test_error_page(client: httpx.Client) -> None:
    _page, text = page(client, "/arcgis/rest/services/NoSuchFolder")
    assert "Folder not found." in text and re.search(r"Code:\s*404", text)


def test_service_page_shows_values_as_the_json_does(client: httpx.Client, live: LiveServer) -> None:
    """Booleans as true/false (not Python's True/False), every field listed in full."""
    json_info = client.get("/arcgis/rest/services/Live/ndvi/ImageServer", params={"f": "json"})
    info = json_info.json()
    _, text = page(client, "/arcgis/rest/services/Live/ndvi/ImageServer")
    cells = dict(re.findall(r'<td class="key">([^<]+):</td><td>([^<]*)</td>', text))
    assert cells["hasMultidimensions"] == "false" and cells["allowRasterFunction"] == "true"
    shown = {key: cell for key, cell in cells.items() if cell in ("True", "False", "None")}
    assert shown == {k: v for k, v in info.items() if v == "None"}  # only real "None" strings
    assert not [cell for cell in cells.values() if cell.endswith("...")]
    for field in info["fields"]:
        assert f"{field['name']} (type: {field['type']}" in cells["fields"]
