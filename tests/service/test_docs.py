"""/docs works offline: every file it loads comes from this server."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

# Each URL the page loads: a script's or a stylesheet's, an icon's, the spec's.
LOADED = re.compile(r"""(?:src|href)=["']([^"']+)|url: ["']([^"']+)""")
KINDS = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
         ".json": "application/json"}  # fmt: skip


def _loaded_urls(html: str) -> list[str]:
    return [a or b for a, b in LOADED.findall(html)]


def test_the_api_docs_load_only_files_this_server_serves(client: TestClient) -> None:
    expected = ["/docs-assets/swagger-ui.css", "/static/favicon.svg",
                "/docs-assets/swagger-ui-bundle.js", "/openapi.json"]  # fmt: skip

    response = client.get("/docs")

    assert response.status_code == 200
    assert _loaded_urls(response.text) == expected
    assert "//" not in response.text  # no other origin, not even in a comment
    for url in expected:
        loaded = client.get(url)
        assert loaded.status_code == 200, url
        assert loaded.headers["content-type"].startswith(KINDS[url[url.rfind(".") :]]), url
        assert len(loaded.content) > 0, url


def test_there_is_no_redoc_page(client: TestClient) -> None:
    # ReDoc's page fetches its maker's logo from their site: not offline.
    assert client.get("/redoc").status_code == 404


def test_swagger_ui_fetches_no_validator_badge(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text
