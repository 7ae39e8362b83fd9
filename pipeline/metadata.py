"""What a bundle's ``metadata.json`` holds, as one typed model.

The trainer writes a :class:`ModelDescription`; the bundle writer adds the format version and
the checksum of the network's arrays, making it a :class:`BundleMetadata`; ``load_bundle``
validates the file against that, and the service serves it. No other code spells its keys.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from pipeline.audio import DEFAULT_MAX_SECONDS
from pipeline.config import CLASSIC_HIDDEN, MAX_OPEN_SET_WEIGHT, FeatureConfig, TrainConfig
from pipeline.names import label_fault
from pipeline.network import OutputActivation
from pipeline.quality.conditions import Matched

__all__ = [
    "FORMAT_VERSION",
    "BundleMetadata",
    "Metrics",
    "ModelDescription",
    "OpenSetSummary",
    "TrainingRecord",
    "created_now",
    "json_type_problems",
]

# Version 2: the network's arrays in network.npz, checksummed here; model.keras is only an
# export. Version 1 bundles held the arrays in model.keras alone (`voiceid convert` upgrades them).
FORMAT_VERSION = 2


@dataclass(frozen=True)
class TrainingRecord(TrainConfig):
    """The settings a bundle was trained with: its :class:`TrainConfig` with the hidden width
    the network has, the longest clip read, whether the feature config's ``fmax`` came from the
    data rather than the user, and whether the width was pinned (``--hidden``) rather than
    chosen from the speaker count (:func:`pipeline.config.hidden_units`)."""

    hidden: int = CLASSIC_HIDDEN
    max_seconds: float = DEFAULT_MAX_SECONDS
    fmax_derived: bool = True
    hidden_pinned: bool = False


def _pinned_in_old_bundles(value: Any) -> Any:
    """Bundles from before the width followed the speaker count do not say whether it was
    pinned: their default was the classic width, so any other was pinned."""
    if isinstance(value, dict) and "hidden_pinned" not in value:
        return value | {"hidden_pinned": value.get("hidden", CLASSIC_HIDDEN) != CLASSIC_HIDDEN}
    return value


def _known_keys_only(kind: type) -> Callable[[Any], Any]:
    """A before-validator refusing keys that are not fields of the dataclass ``kind``."""
    names = {f.name for f in dataclasses.fields(kind)}

    def check(value: Any) -> Any:
        if isinstance(value, dict) and set(value) - names:
            raise ValueError(f"unknown keys: {', '.join(sorted(set(value) - names))}")
        return value

    return check


class Metrics(BaseModel):
    """Figures of the trained model. The optional ones are there only when their data was given
    (``--test-dir``, ``--unknown-dir``); absent ones are left out of the JSON, not null."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    train_accuracy: float = Field(ge=0, le=1)
    val_accuracy: float = Field(ge=0, le=1)
    val_false_reject_rate: float = Field(ge=0, le=1)
    val_degraded_false_reject_rate: float | None = Field(
        None, ge=0, le=1, description="of a degraded copy of each validation clip"
    )
    n_train: int = Field(ge=0, description="training clips")
    n_train_degraded: int = Field(ge=0, description="degraded copies trained on besides")
    n_val: int = Field(ge=0, description="validation clips")
    test_accuracy: float | None = Field(None, ge=0, le=1)
    false_accept_rate: float | None = Field(None, ge=0, le=1)
    false_reject_rate: float | None = Field(None, ge=0, le=1)
    open_set_auroc: float | None = Field(None, ge=0, le=1)

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class OpenSetSummary(BaseModel):
    """How the bundle tells known voices from others (``pipeline.openset``): the method, the
    distance threshold, the quantile it was calibrated at, how many reference rows it compares
    with, and the share of training clips it rejects by leave-one-out."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # "-scaled": distances in units of each speaker's scale (pipeline.openset); the plain
    # method, of bundles made before scales, has every scale 1.
    method: Literal["nearest-training-clip-scaled", "nearest-training-clip"] = (
        "nearest-training-clip-scaled"
    )
    threshold: float = Field(
        ge=0, description="a clip farther than this from its speaker is unknown"
    )
    quantile: float = Field(ge=0, lt=1, description="share of training clips the threshold rejects")
    n_references: int = Field(ge=1, description="reference rows kept, all speakers together")
    leave_one_out_false_reject_rate: float = Field(ge=0, le=1)
    hidden_weight: float = Field(
        0.0,
        ge=0,
        le=MAX_OPEN_SET_WEIGHT,
        description="weight of the hidden activations beside the standardised histogram in the "
        "distances (0: the histogram alone, as in bundles made before it)",
    )
    spread_weight: float = Field(
        0.0,
        ge=0,
        le=MAX_OPEN_SET_WEIGHT,
        description="weight of the band spread after the histogram in the distances, "
        "standardised by the arrays spread.mean and spread.scale of the open set's file (0: "
        "none, as in bundles made before it)",
    )
    noise_limit: float = Field(
        0.0,
        ge=0,
        description="how far a clip may move at no cost along the direction noise shifts the "
        "training clips (the array noise.direction of the open set's file), in the distances' "
        "units (0: not at all, as in bundles made before it)",
    )
    matched: dict[Matched, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="the distance threshold for clips that resemble each degraded condition "
        "(pipeline.quality.conditions), against the speaker's references made under it; none "
        "in a bundle made before them: such clips are judged as clean ones",
    )
    envelope_radii: dict[Annotated[str, Field(min_length=1)], Annotated[float, Field(ge=0)]] = (
        Field(
            default_factory=dict,
            description="each voice taught with few takes and its spectral envelope radius "
            "(pipeline.envelope; the arrays envelope.* of the open set's file): a clean clip the "
            "distance refuses is named when its envelope lies within it; none in a bundle without "
            "such voices, or made before them",
        )
    )


class ModelDescription(BaseModel):
    """Everything the trainer says about a model: labels in output order, the feature config the
    rows were made with, the unknown-speaker threshold, how it was trained and how it scored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    labels: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        min_length=1, description="speakers, in output order, each once"
    )
    feature_config: Annotated[FeatureConfig, BeforeValidator(_known_keys_only(FeatureConfig))]
    feature_version: int = Field(description="of the feature code that made the rows")
    threshold: float = Field(
        ge=0, le=1, description="top scores below this answer 'unknown' (unsure between speakers)"
    )
    open_set: OpenSetSummary
    output_activation: OutputActivation
    architecture: tuple[int, int, int] = Field(description="inputs, hidden units, outputs")
    training: Annotated[
        TrainingRecord,
        BeforeValidator(_known_keys_only(TrainingRecord)),
        BeforeValidator(_pinned_in_old_bundles),
    ]
    metrics: Metrics
    versions: dict[str, str] = Field(description="Python's and the libraries' versions")
    device: str = Field(description="the TensorFlow device it was trained on")
    created: AwareDatetime

    @field_validator("labels")
    @classmethod
    def _each_label_once(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted(label for label, count in Counter(labels).items() if count > 1)
        if twice:
            raise ValueError(f"each label must be there once, but {twice} repeat")
        return labels

    @field_validator("labels")
    @classmethod
    def _each_label_answerable(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        """The rule training holds speaker folders to (``names.label_fault``): a label with a
        line break or an escape sequence would be printed into every answer and log line."""
        for label in labels:
            if (fault := label_fault(label)) is not None:
                raise ValueError(f"label {label!r} {fault}")
        return labels


class BundleMetadata(ModelDescription):
    """``metadata.json``: the :class:`ModelDescription`, the bundle format version, and the
    sha256 of ``network.npz`` and ``openset.npz``, which ``load_bundle`` checks before reading."""

    format_version: int = FORMAT_VERSION
    network_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    openset_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @classmethod
    def with_checksums(
        cls, description: ModelDescription, network_sha256: str, openset_sha256: str
    ) -> BundleMetadata:
        return cls.model_validate(
            dict(description) | {"network_sha256": network_sha256, "openset_sha256": openset_sha256}
        )


def _json_kind(value: Any) -> str | None:
    """The JSON type ``value`` is written as (``None`` for what JSON has no type for)."""
    if value is None:
        return "null"
    for kind, types in _JSON_KINDS:
        if isinstance(value, types):
            return kind
    return None


_JSON_KINDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("boolean", bool),  # before number: a bool is an int
    ("number", (int, float)),
    ("string", str),
    ("array", (list, tuple)),
    ("object", dict),
)


def json_type_problems(written: Any, read: Any, where: tuple[str, ...] = ()) -> list[str]:
    """Where validation read a value of ``written`` (a ``metadata.json`` as parsed) as a value of
    another JSON type in ``read`` (the validated metadata dumped as JSON), in
    :func:`pipeline.bundle.validation_problems`' words: pydantic reads the string ``"0.5"`` as the
    number 0.5 and ``1`` as ``true``, but no writer of a bundle writes either, so such a file was
    edited by hand or damaged. Keys absent from ``read`` (metrics left out) are not compared."""
    kind, wanted = _json_kind(written), _json_kind(read)
    if kind is None or wanted is None:
        return []
    if kind != wanted:
        shown = repr(written)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return [f"{'.'.join(where)}={shown}: a {kind} where a {wanted} belongs"]
    if isinstance(written, dict) and isinstance(read, dict):
        return [
            problem
            for key, value in written.items()
            if key in read
            for problem in json_type_problems(value, read[key], (*where, str(key)))
        ]
    if isinstance(written, list | tuple) and isinstance(read, list | tuple):
        return [
            problem
            for i, (value, value_read) in enumerate(zip(written, read, strict=False))
            for problem in json_type_problems(value, value_read, (*where, str(i)))
        ]
    return []


def created_now() -> datetime:
    """The creation time recorded in a new bundle: now, in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)
