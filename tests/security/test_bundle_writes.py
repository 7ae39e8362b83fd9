"""Bundle writes survive crashes: kill -9 mid-save never leaves the path without a bundle, an
interrupted two-rename swap is put back, and crashed writes' temporaries are cleaned."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import bundle as bundle_module
from pipeline.bundle import load_bundle, recover_interrupted_swap
from pipeline.metadata import ModelDescription
from tests.helpers import MODEL_DIR

# Rewrites MODEL_DIR's bundle at argv[1] in a loop, as a trainer saving over and over would.
_WRITER = """
import sys
from pathlib import Path
from pipeline.bundle import load_bundle, write_bundle
from pipeline.metadata import ModelDescription
b = load_bundle(sys.argv[2])
fields = ModelDescription.model_fields
desc = ModelDescription(**{k: v for k, v in dict(b.metadata).items() if k in fields})
print("ready", flush=True)
while True:
    write_bundle(Path(sys.argv[1]), network=b.network, open_set=b.open_set, description=desc,
                 files={"report.json": b"{}" * 50_000}, arrays={})
"""


@pytest.mark.slow
def test_kill_9_during_saves_always_leaves_a_loadable_bundle(tmp_path: Path) -> None:
    out = tmp_path / "model"
    shutil.copytree(MODEL_DIR, out)
    for i in range(12):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(out), str(MODEL_DIR)], stdout=subprocess.PIPE
        )
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        time.sleep(0.05 + 0.013 * i)  # land at different points of the write
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()

        assert load_bundle(out).name == "default"


def test_an_interrupted_two_rename_swap_is_put_back_on_load(tmp_path: Path) -> None:
    out = tmp_path / "model"
    shutil.copytree(MODEL_DIR, tmp_path / ".model.old-abc123")  # the crash came between renames

    assert load_bundle(out).name == "default"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert recover_interrupted_swap(out) is False


def test_temporaries_of_crashed_writes_are_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "model"
    shutil.copytree(MODEL_DIR, out)
    crashed = tmp_path / ".model.x1y2z3"
    crashed.mkdir()
    os.utime(crashed, (0, 0))
    monkeypatch.setattr(bundle_module, "_exchange", lambda a, b: False)  # the two-rename path
    shipped = load_bundle(MODEL_DIR)
    fields = ModelDescription.model_fields
    description = ModelDescription(
        **{k: v for k, v in dict(shipped.metadata).items() if k in fields}
    )

    bundle_module.write_bundle(
        out, network=shipped.network, open_set=shipped.open_set, description=description,
        files={}, arrays={},
    )  # fmt: skip

    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
