"""What ``voiceid serve`` checks before it starts a server: each refusal exits 2 with one line
that names the setting and its value, never a traceback from uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.pipeline.test_paths import NO_TEMP_MESSAGE, no_temp_dir
from tests.security.test_serve import _serve_refusal
from voiceid.cli import main


def test_no_writable_temporary_folder_stops_it_saying_what_to_mount(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_temp_dir(monkeypatch)

    code, err = _serve_refusal(monkeypatch, capsys, ["--port", str(free_port())])

    assert (code, err) == (2, f"voiceid serve: error: {NO_TEMP_MESSAGE}\n")


def test_a_misspelt_variable_is_warned_of_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    started: dict[str, object] = {}
    monkeypatch.setattr(os, "environ", os.environ.copy())
    monkeypatch.setattr("service.main.uvicorn.run", lambda *a, **kw: started.update(kw))
    for name in [n for n in os.environ if n.upper().startswith("VOICEID_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("VOICEID_MODEL", "/models/mine")

    code = main(["serve", "--port", str(free_port()), "--data-dir", str(tmp_path)])

    assert (code, bool(started)) == (0, True)
    assert capsys.readouterr().err.splitlines()[0] == (
        "voiceid serve: warning: VOICEID_MODEL is no setting, and is ignored: did you mean "
        "VOICEID_MODEL_DIR?"
    )
