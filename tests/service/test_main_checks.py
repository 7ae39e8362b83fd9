"""What ``voiceid serve`` checks before it starts a server: each refusal exits 2 with one line
that names the setting and its value, never a traceback from uvicorn."""

from __future__ import annotations

import pytest

from tests.helpers import free_port
from tests.pipeline.test_paths import NO_TEMP_MESSAGE, no_temp_dir
from tests.security.test_serve import _serve_refusal


def test_no_writable_temporary_folder_stops_it_saying_what_to_mount(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_temp_dir(monkeypatch)

    code, err = _serve_refusal(monkeypatch, capsys, ["--port", str(free_port())])

    assert (code, err) == (2, f"voiceid serve: error: {NO_TEMP_MESSAGE}\n")
