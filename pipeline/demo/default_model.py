"""The shipped ``models/default``: how it is made, in one place for the Makefile and its test.

python -m pipeline.demo.default_model models/default
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from pipeline.config import TrainConfig
from pipeline.demo.synth import write_demo_data
from pipeline.train import TrainOptions, train

__all__ = ["DEMO_CLIPS_PER_VOICE", "DEMO_SEED", "build_default_model"]

DEMO_SEED = 0
DEMO_CLIPS_PER_VOICE = 100
# Validation holds 40 clips: 0.01 makes the threshold their lowest top score, which rejects
# about 1 in 40 fresh clips of a known voice.
# Eight candidates rather than the default six: the model must keep the Stranger's clips out
# while naming Steve's and David's fresh ones (tests/pipeline/demo/test_default_model.py), and
# on the demo voices six candidates did not.
OPTIONS = TrainOptions(
    train=TrainConfig(seed=0, unknown_quantile=0.01, candidates=8), name="default"
)


def build_default_model(out_dir: Path) -> dict[str, Any]:
    """Write the demo voices to a temporary folder and train the default bundle from them."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demo"
        write_demo_data(data, clips_per_voice=DEMO_CLIPS_PER_VOICE, seed=DEMO_SEED)
        return train(data, out_dir, OPTIONS)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "models/default")
    result = build_default_model(target)
    print(f"wrote {target}: validation accuracy {result['metrics']['val_accuracy']:.4f}")
