"""Pictures for the bundle: training curves and the confusion matrix, as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from pipeline.extras import missing_extra

try:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
except ModuleNotFoundError as exc:  # a default install: serving only
    raise missing_extra(exc, "drawing the training pictures") from exc

__all__ = ["confusion_png", "training_curves_png"]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def training_curves_png(history: dict[str, list[float]], best_epoch: int) -> bytes:
    """Loss and accuracy per epoch for the training and validation splits."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, title in ((ax_loss, "loss", "Loss"), (ax_acc, "accuracy", "Accuracy")):
        ax.plot(epochs, history[key], label="training")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.axvline(best_epoch + 1, color="grey", linestyle=":", label="kept weights")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_acc.set_ylim(0, 1.01)
    ax_loss.legend()
    return _png(fig)


def confusion_png(confusion: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> bytes:
    """A labelled confusion matrix: rows are true speakers, columns predicted ones."""
    matrix = np.asarray(confusion)
    size = 1.2 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    high = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > high else "black")  # fmt: skip
    return _png(fig)
