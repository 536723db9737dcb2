"""The docs plugin: the Swagger page at ``/schema`` and ``/schema/swagger`` loads every
file from this server (``/schema/assets/``), public like the document itself."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from kernel.testing import harness


@pytest.fixture
def h(tmp_path):
    with harness(tmp_path, ["docs"]) as harness_:
        yield harness_


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]


def test_docs_page_loads_everything_from_this_server(h):
    for page_path in ("/schema", "/schema/swagger"):
        page = h.client.get(page_path)  # no token: the docs are public
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "http://" not in page.text and "https://" not in page.text
        links = Links()
        links.feed(page.text)
        assert len(links.urls) == 4
        assert all(url.startswith("/schema/assets/") for url in links.urls), links.urls
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in links.urls:
        asset = h.client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(kinds[url[url.rindex(".") :]])
        assert len(asset.content) > 500
    bundle = h.client.get("/schema/assets/swagger-ui-bundle.js").text
    assert "openapi: 3.1.0" in bundle  # Swagger UI 5: it renders the document's version
    for missing in ("index.html", "swagger-initializer.js", "..%2F__init__.py", "nope.js"):
        assert h.client.get(f"/schema/assets/{missing}").status_code == 404, missing
    assert h.client.get("/schema/scalar").status_code == 404  # no offline Scalar: dropped


def test_the_page_carries_the_document_the_kernel_serves(h):
    document = h.client.get("/schema/openapi.json")
    assert document.status_code == 200 and document.json()["info"]["title"] == "imageapi"
    assert not [path for path in document.json()["paths"] if path.startswith("/schema")]
    page = h.client.get("/schema/swagger").text
    assert '"title":"imageapi"' in page and '"/photos":' in page  # embedded, not fetched
