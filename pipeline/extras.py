"""The optional parts of voiceid: what each needs beyond the default install, and the error
that says which extra to install when it is missing.

``pip install voiceid`` serves, predicts and evaluates. Training, and converting a format-1
bundle (which reads Keras's file), need the ``train`` extra: Keras on TensorFlow, matplotlib
for the bundle's pictures, and pyarrow for feature tables (``voiceid features``). The commands
check before they start, so that a missing extra is one clear error rather than an
``ImportError`` after the features are extracted.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from pipeline.errors import MissingExtraError

__all__ = ["INSTALL_TRAIN", "TRAIN_MODULES", "missing_extra", "require_training_stack"]

TRAIN_MODULES = ("keras", "tensorflow", "matplotlib", "pyarrow")  # the train extra's modules
INSTALL_TRAIN = (
    "pip install 'voiceid[train]' ('voiceid[gpu]' to train on a CUDA GPU; "
    "pip install -e '.[train]' in a checkout)"
)


def _message(purpose: str, missing: Sequence[str]) -> str:
    return (
        f"{purpose} needs the training extra, which is not installed (no module "
        f"{', '.join(repr(name) for name in missing)}): {INSTALL_TRAIN}"
    )


def require_training_stack(purpose: str, modules: Sequence[str] = TRAIN_MODULES) -> None:
    """Raise :class:`MissingExtraError` naming the extra when any of ``modules`` (top-level
    names) cannot be imported. Looks them up without importing them: TensorFlow takes seconds."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(_message(purpose, missing))


def missing_extra(exc: ModuleNotFoundError, purpose: str) -> MissingExtraError:
    """The error to raise (``from exc``) when importing the training stack failed."""
    return MissingExtraError(_message(purpose, [(exc.name or "?").split(".")[0]]))
