"""TensorFlow's lines from before its logging starts are dropped; everything else is kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.tflog import absl_preamble_dropped
from tests.helpers import ROOT

ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = b"I0000 00:00:1796451742.146037   24420 port.cc:153] oneDNN custom operations are on.\n"


@pytest.mark.parametrize(("level", "kept"), [
    ("2", b"a real problem\n"),
    ("1", b"a real problem\n"),
    ("0", ABSL + ONEDNN + b"a real problem\n"),
])  # fmt: skip
def test_the_preamble_is_dropped_when_the_level_hides_info_lines(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, level: str, kept: bytes
) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)

    with absl_preamble_dropped():
        os.write(2, ABSL + ONEDNN + b"a real problem\n")

    assert capfd.readouterr().err.encode() == kept


def test_what_the_body_raises_comes_after_what_it_wrote(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")

    with pytest.raises(ImportError, match=r"^no such library$"), absl_preamble_dropped():
        os.write(2, ABSL + b"libfoo.so: cannot open shared object file\n")
        raise ImportError("no such library")
    print("after", file=sys.stderr)

    assert capfd.readouterr().err == "libfoo.so: cannot open shared object file\nafter\n"


def _preamble_printed(code: str, level: str | None) -> list[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
    return [line for line in done.stderr.splitlines() if b"absl::" in line or b"port.cc" in line]


def test_importing_the_training_stack_prints_none_of_tensorflow_s_preamble() -> None:
    raw = _preamble_printed("import tensorflow", "2")
    if not raw:
        pytest.skip("this TensorFlow prints no preamble")

    assert _preamble_printed("import pipeline.model, pipeline.convert", None) == []
    assert len(_preamble_printed("import pipeline.model", "0")) == len(raw)
