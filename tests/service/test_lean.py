"""Serving stays lean: a server that has loaded a bundle and answered a clip has imported none
of the training stack (librosa with numba and llvmlite, TensorFlow and Keras, matplotlib).

Each check runs in a fresh interpreter: this test process has imported them all.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import MODEL_DIR, ROOT

# Never in a serving process: what issue 12 measured at about 170 MB and a second of start-up.
TRAINING_STACK = ("librosa", "numba", "llvmlite", "tensorflow", "keras", "matplotlib")
# Nor these, which the service itself does not need: training's own modules, and scipy.signal
# (it loads scipy.stats: 0.5 s and tens of MB), used for degraded copies and demo voices.
TRAINING_MODULES = ("pipeline.train", "pipeline.model", "pipeline.plots", "pipeline.augment",
                    "pipeline.dataset", "scipy.signal")  # fmt: skip

# Loads the shipped bundle in the app, answers one clip, /metrics, a timeline and a live stream,
# prints what is imported.
SERVE_ONE_CLIP = """
import json, sys
{preamble}
from service.app import create_app
from service.settings import Settings
from tests.helpers import LoopbackClient
from tests.signals import encode, harmonics

app = create_app(Settings(model_dir={model_dir!r}))
with LoopbackClient(app, base_url="http://127.0.0.1") as client:
    wav = encode(harmonics(seconds=1.0))
    answer = client.post("/predict", files={{"file": ("a.wav", wav, "audio/wav")}})
    metrics = client.get("/metrics")
    timeline = client.post("/timeline", content=wav, headers={{"content-type": "audio/wav"}})
    with client.websocket_connect("/listen") as ws:  # a live stream, answered once
        ws.send_text(json.dumps({{"sample_rate": 16000}}))
        ws.receive_json()
        ws.send_bytes((harmonics(seconds=1.0) * 32767).astype("<i2").tobytes())
        ws.receive_json()
print(json.dumps({{"status": [answer.status_code, metrics.status_code, timeline.status_code],
                  "modules": sorted(sys.modules)}}))
"""


def modules_after_one_clip(preamble: str) -> set[str]:
    code = SERVE_ONE_CLIP.format(preamble=preamble, model_dir=str(MODEL_DIR))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["status"] == [200, 200, 200]
    return set(result["modules"])


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (or a submodule of one) is among ``modules``."""
    return sorted({n for n in names for m in modules if m == n or m.startswith(f"{n}.")})


def test_the_app_answers_a_clip_without_the_training_stack_or_training_code() -> None:
    modules = modules_after_one_clip(preamble="")

    assert loaded(modules, (*TRAINING_STACK, *TRAINING_MODULES)) == []


@pytest.mark.slow
def test_a_voiceid_serve_worker_answers_a_clip_without_the_training_stack() -> None:
    # A worker of `voiceid serve --workers N` re-imports the voiceid command as its main module
    # (multiprocessing's spawn), and with it the package's public API, train() included.
    modules = modules_after_one_clip(preamble="import voiceid.cli")

    assert "voiceid.cli" in modules
    assert loaded(modules, (*TRAINING_STACK, "scipy.signal")) == []
