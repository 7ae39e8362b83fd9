"""docker/healthcheck.py, the images' HEALTHCHECK, against a stand-in for /ready (no docker)."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

from tests.helpers import ROOT

NOT_READY = "no model is loaded yet: model bundle 'mine' does not exist or is not a folder"


def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "docker" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Ready(BaseHTTPRequestHandler):
    """/ready as the service answers it while no model is loaded."""

    def do_GET(self) -> None:
        body = json.dumps({"detail": NOT_READY}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_ready() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_an_unhealthy_answer_says_why_the_server_is_not_ready(
    not_ready: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `docker inspect` shows of the probe: the reason, not the status alone."""
    monkeypatch.setenv("VOICEID_HOST", "0.0.0.0")
    monkeypatch.setenv("VOICEID_PORT", str(not_ready))

    assert healthcheck().main() == 1
    assert capsys.readouterr().out == (
        f"http://127.0.0.1:{not_ready}/ready: HTTP 503: {NOT_READY}\n"
    )
