"""TensorFlow's start-up lines are kept off standard error, and nothing else is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.native_log import NOISE, filtered_stderr, forward
from tests.helpers import ROOT

ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = (
    b"I0000 00:00:1796467266.399800    9674 port.cc:153] oneDNN custom operations are on. You "
    b"may see slightly different numerical results due to floating-point round-off errors from "
    b"different computation orders. To turn them off, set the environment variable "
    b"`TF_ENABLE_ONEDNN_OPTS=0`.\n"
)


def forwarded(*chunks: bytes) -> bytes:
    """What ``forward`` passes on when ``chunks`` are written to it one by one."""
    source_r, source_w = os.pipe()
    dest_r, dest_w = os.pipe()
    for chunk in chunks:
        os.write(source_w, chunk)
    os.close(source_w)
    forward(source_r, dest_w)
    with os.fdopen(dest_r, "rb") as out:
        return out.read()


def test_only_the_start_up_lines_are_left_out() -> None:
    out = forwarded(ABSL, ONEDNN, b"voiceid train: error: no such folder\n", ABSL, ONEDNN)

    assert out == b"voiceid train: error: no such folder\n"


def test_progress_redraws_and_a_last_unended_line_pass_on() -> None:
    out = forwarded(b"reading 1 of 9\r", b"reading 2", b" of 9\r", ONEDNN[:40], ONEDNN[40:],
                    b"done\r\n", b"no newline")  # fmt: skip

    assert out == b"reading 1 of 9\rreading 2 of 9\rdone\r\nno newline"


def test_a_line_that_only_starts_like_one_of_them_is_kept() -> None:
    line = b"WARNING: All log messages before absl::InitializeLog() is called are lost\n"

    assert forwarded(line) == line
    assert not any(n.fullmatch(line) for n in NOISE)


def test_within_the_block_native_writes_to_descriptor_2_are_filtered(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with filtered_stderr():
        os.write(2, ABSL + b"kept\n" + ONEDNN)
    os.write(2, ABSL)  # after the block, nothing is filtered

    assert capfd.readouterr().err == "kept\n" + ABSL.decode()


@pytest.mark.parametrize(
    "exit_",
    ["sys.exit(2)", "restore_stderr(); os._exit(2)"],  # the voiceid command's way
)
def test_a_process_that_exits_while_another_thread_filters_loses_no_line(exit_: str) -> None:
    """As ``voiceid enrol`` does when it finds an error while TensorFlow loads in a thread."""
    code = (
        "import os, sys, threading, time\n"
        "from pipeline.native_log import filtered_stderr, restore_stderr\n"
        "def load():\n"
        "    with filtered_stderr():\n"
        "        time.sleep(30)\n"
        "threading.Thread(target=load, daemon=True).start()\n"
        "time.sleep(0.2)\n"
        "print('voiceid enrol: error: no usable clips', file=sys.stderr)\n"
        f"{exit_}\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=20)  # fmt: skip

    assert (done.returncode, done.stderr) == (2, b"voiceid enrol: error: no usable clips\n")


def test_importing_the_training_stack_prints_nothing() -> None:
    pytest.importorskip("tensorflow")
    code = "import pipeline.model, pipeline.convert, sys; print('imported', file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=120)  # fmt: skip

    assert (done.returncode, done.stderr) == (0, b"imported\n")
