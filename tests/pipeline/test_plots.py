"""Tests of the bundle's pictures: PNG images of the expected size."""

from __future__ import annotations

import io

import matplotlib.image

from pipeline.plots import confusion_png, training_curves_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _shape(png: bytes) -> tuple[int, ...]:
    return tuple(matplotlib.image.imread(io.BytesIO(png), format="png").shape)


def test_training_curves_are_a_wide_png() -> None:
    history = {
        "loss": [1.0, 0.5, 0.4],
        "val_loss": [1.1, 0.6, 0.7],
        "accuracy": [0.5, 0.9, 1.0],
        "val_accuracy": [0.5, 0.8, 0.8],
    }

    png = training_curves_png(history, best_epoch=1)

    assert png.startswith(PNG_MAGIC)
    height, width, _ = _shape(png)
    assert width > 2 * height


def test_confusion_matrix_is_a_png_that_grows_with_the_labels() -> None:
    small = confusion_png([[3, 1], [0, 4]], ["a", "b"], "Validation")
    large = confusion_png([[1] * 6 for _ in range(6)], list("abcdef"), "Validation")

    assert small.startswith(PNG_MAGIC)
    assert _shape(large)[0] > _shape(small)[0]
