"""Open-set decisions: is a clip one of the known speakers at all?

The 60-6-N network always names somebody; its top score says how sure it is *between* the known
speakers, not whether the voice is one of them. So a clip's answer is accepted only when

1. it lies close to the predicted speaker's own reference clips (training builds them from its
   training and validation clips, ``pipeline.train``): the Euclidean distance, in the
   network's standardised input space, to the nearest of them, divided by that speaker's *scale*,
   is at most ``threshold`` (otherwise the clip is "far": too far from every clip of that voice),
   and
2. the network is not unsure between speakers: its top score reaches ``unsure_below``, and is
   at least ``UNSURE_ODDS`` times the runner-up's (otherwise the clip is "unsure": torn between
   two voices, whatever threshold the validation clips set).

A clip far from the top voice's clips but near the runner-up's is named as the runner-up: the
network ranked that voice second, and the clip lies among its recordings. Measured on FSDD takes
5-14 against models trained on takes 15-49 (seeds 0-2), half the clips refused as "far" had the
wrong voice on top; naming the runner-up where it is near cut the refused known clips from 6.8 to
5.3 % (seed 0) with no more clips named wrongly, for about half a point more strangers named.

A refused clip whose recording has an issue (``pipeline.quality.issues``: clipped, band-limited,
noisy, too short, ...) is refused as a "poor_recording" instead: outside what the model learned
from, the refusal says more about the recording than about the voice, and the issue says what
would help. A clip that passes both tests is named whatever its recording.

A speaker's scale corrects for how many clips it has: the fewer, the farther apart they lie,
and the farther a fresh clip of the same voice lands from the nearest. Nearest-neighbour
distances grow as ``n ** (-1 / d)`` when ``n`` clips thin out, where ``d`` is the effective
dimension of the voices' clouds, measured on the speakers with many clips by subsampling them
(``effective_dimension``). So speaker ``s`` with ``n_s`` clips has the scale
``(n / n_s) ** (1 / d)``, ``n`` the median count: 1 when every speaker has about as many clips.
The threshold is calibrated on the reference clips alone, so no recordings of strangers are
needed: it is the ``1 - quantile`` quantile of the scaled leave-one-out distances, each speaker
weighing the same whatever its number of clips.

A voice taught with a dozen takes beside voices with ``MIN_CLIPS_TO_MEASURE`` clips or more
cannot place that tail itself (each of its takes would weigh more than ``quantile``, so its one
widest gap would set everybody's threshold), nor is it as tight as they are (a real voice beside
synthetic ones). So the threshold comes from the measured speakers alone, and such a voice gets
a radius of its own (``few_take_radii``): twice the median gap between its takes, or their widest
gap when that is more, never less than the measured voices' threshold (takes that are all but
identical, a recording played back or a synthetic voice, would otherwise leave it a radius no
fresh take reaches), at most about where other people's voices lie; its scale is that radius
over the threshold.

Identical rows (the same recording twice) are kept once, so duplicates cannot tighten it. Each
speaker keeps at most ``MAX_REFERENCES_PER_SPEAKER`` rows, spread over its clips by farthest-point
sampling, so the cost of a decision is bounded whatever the number of speakers: it compares one
clip with one speaker's rows.

**The network's own view.** The space the distances are measured in is the network's
standardised input, followed by its hidden activations times ``hidden_weight``
(:func:`open_set_view`; 0: the input alone, as in bundles made before it). The hidden layer is
what the network learnt to keep of a voice across the degraded copies it trained on, so it moves
a degraded clip of a known voice less than the raw histogram does, and a stranger no closer.
After them come the numbers the network does not read (:class:`Spread`): each band's spread over
the frames, and the correlations of 12 cepstra over them (``FeatureConfig.cepstra``: how the
formants move together), which tell the FSDD men apart better than anything else measured. With
them the threshold keeps 96.25 % of the training clips instead of 95.5 % for fewer strangers
let in: on ``bench.robustness`` (seeds 0-2) the format variants were refused 0.059 of the time
instead of 0.066 and clean takes 0.032 instead of 0.040, and ``bench.openset``'s leave-2-out
FAR fell from 0.085 to 0.083 (at 5 % of known clips refused: from 0.068 to 0.043).

**Condition-matched references.** In the network's input space a degraded clip of a known voice
lies about as far from that voice's clean clips as a stranger does. So a clip that resembles a
degraded recording (``pipeline.quality.conditions``: clipped, band-limited, noisy, reverberant) is
also compared with its speaker's clean clips *and* the training clips' degraded copies made under
that condition (``OpenSet.matched``), with a threshold of that condition's own: the ``1 - quantile``
quantile of the copies' scaled distances to the nearest other reference by
leave-one-*recording*-out, so that a copy's own clip and its other copies never count as its
neighbours. It is accepted when either comparison passes, so a clean clip taken for a degraded
one is never refused for it. A clean clip is judged against the clean clips alone. A voice of a
few takes beside measured ones sets no matched threshold either, and its matched radius stays
within the few-take cap: its copies make it no wider than its takes do.

**A taught voice's envelope.** A clean clip refused as "far" is named all the same when a voice
taught with few takes has an envelope (``pipeline.envelope``) and the clip's lies within its
radius: the top voice where the network is sure of it, else the runner-up (:meth:`Decision.decide`
with ``envelope_of``). The distance, made for voices of hundreds of clips, moves a take from
another sitting about as far from a dozen taught takes as a stranger's clip lies.

**Room for noise.** Added noise moves a clip's row a long way, and mostly one way: on the
training clips' noisy copies (white, pink, brown or babble-like noise at 5-30 dB) 41 % of the
squared shift of a white-noise take is the copies' mean shift, which few speaker differences
follow. So the clean comparison lets a clip move along that mean shift's direction (``Nuisance``,
:func:`fit_nuisance`) by up to ``limit`` either way at no cost: the distance is to the nearest
reference after that move. When it came (an allowance of 0.7 times the mean shift's length,
the threshold at 95.5 % of the training clips, before the cepstra), ``bench.robustness`` (FSDD,
seeds 0-2) refused known takes with white noise at 20 dB 0.088 of the time (0.132 without it,
at 95 %), those clipped at half their peak 0.070 (0.075) and clean ones 0.040 (0.045), with
LibriSpeech strangers let in 0.050 (0.055); ``bench.openset``'s leave-2-speakers-out FAR was
0.085 (0.091). Codecs gain nothing from it (MP3 at 16 kbit/s 0.118 against 0.120). The matched
references (above) are compared without it: they hold the noisy copies themselves.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from pipeline.envelope import CAP as ENVELOPE_CAP
from pipeline.envelope import ORDER, SPREAD_LIMIT, Envelopes
from pipeline.errors import BundleError, ParameterError
from pipeline.network import Network
from pipeline.quality.conditions import MATCHED_BY_AUGMENT
from pipeline.quality.issues import Issue

__all__ = [
    "MAX_REFERENCES_PER_SPEAKER",
    "METHOD",
    "UNSCALED_METHOD",
    "UNSURE_ODDS",
    "Copies",
    "Decided",
    "Decision",
    "Nuisance",
    "OpenSet",
    "Reason",
    "Spread",
    "auroc",
    "calibrate",
    "count_scales",
    "effective_dimension",
    "equal_weight_quantile",
    "few_take_radii",
    "few_take_voices",
    "fit_envelopes",
    "fit_nuisance",
    "fit_spread",
    "leave_one_out_distances",
    "leave_one_recording_out_distances",
    "load_open_set",
    "open_set_view",
    "save_open_set",
]

METHOD = "nearest-training-clip-scaled"
UNSCALED_METHOD = "nearest-training-clip"  # bundles before per-speaker scales: every scale is 1
MAX_REFERENCES_PER_SPEAKER = 1000  # rows kept per speaker; bounds a decision's cost
Reason = Literal["far", "unsure", "poor_recording"]
# A clip whose top score is under this many times the runner-up's is torn between the two voices,
# whatever the calibrated top-score threshold ("unsure" keeps its meaning when teaching a voice
# lowers that threshold). Measured on the validation split of FSDD models trained on takes 15-49
# (seed 0: all six speakers, and the four of the leave-out pair george+nicolas; their clean clips
# and one degraded copy of each): under odds of 1.25 the top voice was right on 15 of 31 clips, a
# coin toss; from 1.25 to 1.5 on 20 of 31; above 1.5 on 1,283 of 1,337.
UNSURE_ODDS = 1.25


@dataclass(frozen=True)
class Spread:
    """How the open set measures the numbers that follow a row's histogram: the band spread
    (``FeatureConfig.band_spread``) and the cepstral correlations (``FeatureConfig.cepstra``),
    each column less its ``mean`` over the training clips, over its ``scale``, times ``weight``
    and its ``column_weights`` entry (1 when None). :func:`fit_spread` gives every band-spread
    column one scale and each cepstral column its own, and a column the training clips hardly
    moved an infinite one: it is left out."""

    mean: np.ndarray
    scale: np.ndarray
    weight: float
    column_weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.mean.shape != self.scale.shape or self.mean.ndim != 1:
            raise ParameterError("the spread's mean and scale must be (S,) arrays alike")
        if not (np.all(np.isfinite(self.mean)) and np.all(self.scale > 0) and self.weight > 0):
            raise ParameterError("the spread's mean must be finite, its scale and weight positive")
        weights = self.column_weights
        if weights is not None and (
            weights.shape != self.mean.shape or not np.all(np.isfinite(weights) & (weights >= 0))
        ):
            raise ParameterError("the spread's column weights must be (S,) numbers >= 0")

    @property
    def measured(self) -> int:
        """How many columns count: those of a finite scale."""
        return int(np.isfinite(self.scale).sum())

    @property
    def variance(self) -> float:
        """The columns' summed variance over the training clips as the open set measures them
        (each counted columns' 1 times its weight, squared): what they add to the squared
        distance between two clips drawn at random."""
        counted = np.isfinite(self.scale)
        weights = np.ones(len(self.scale)) if self.column_weights is None else self.column_weights
        return float(self.weight**2 * np.sum(weights[counted] ** 2))

    def view(self, rows: np.ndarray, inputs: int) -> np.ndarray:
        """The (B, S) spread columns of raw feature rows (B, inputs + S), as the open set
        measures them."""
        if rows.shape[1] != inputs + len(self.mean):
            raise ParameterError(
                f"feature rows of {rows.shape[1]} numbers, but the open set measures "
                f"{inputs} bands and {len(self.mean)} numbers after them"
            )
        scaled = self.weight * (rows[:, inputs:] - self.mean) / self.scale
        return scaled if self.column_weights is None else scaled * self.column_weights


MIN_SPREAD_DB = 1.0  # a spread column whose training clips vary less than this (dB) is left out
# Each cepstral correlation's scale is at least this: the least any of them varies between one
# speaker's 1 s pieces of read speech (LibriSpeech-mini: 0.29-0.38, median 0.32; over FSDD's
# training takes each varies 0.39-0.53). The two synthetic demo voices vary as little as 0.065,
# and at that scale a real voice taught beside them lay far from its own takes: bench.enrol's
# FSDD voices taught a dozen takes of "zero" named 0.873 of 25 fresh takes each (in-process,
# takes the benchmark does not use), 0.927 with the floor (both at a few-take cap of 0.9).
CEPSTRAL_SCALE_FLOOR = 0.3


def fit_spread(
    rows: np.ndarray, inputs: int, weight: float, cepstral: tuple[int, float] = (0, 0.0)
) -> Spread | None:
    """The :class:`Spread` of training rows (n, inputs + S) at ``weight``; None when they carry
    nothing after the histogram, or when nothing after it is weighed. ``cepstral``: how many of
    the S columns, at the end, are cepstral correlations, and their weight.

    Every band-spread column is scaled by the same number, the root mean square of their
    standard deviations over ``rows``, so a dB of swing weighs the same in every band; a column
    whose standard deviation is under ``MIN_SPREAD_DB`` is left out (an infinite scale). Scaled
    column by column, the two synthetic demo voices, which leave 45 of the 120 columns at the
    -40 dB floor and others within 1.5 dB, held a voice taught later to a few tenths of a dB in
    bands where real voices move by several: a synthetic voice taught a dozen takes was named on
    4 of 8 fresh ones (6 with those 45 left out, 7 with one scale). On FSDD (15 leave-2-out
    models, seed 0, every column moving 3.8 dB or more) one scale lets in as few strangers as a
    scale a column (0.057 and 0.060 of them at 5 % of known clips refused; 0.083 without the
    spread). A correlation is a number from -1 to 1 and the pairs move by different amounts, so
    each cepstral column is scaled by its own standard deviation (emulated on the same models
    and bench.robustness's, one scale for all of them refused more of the format variants for
    as many strangers let in: 0.063 against 0.059 at 0.082-0.086), never less than
    ``CEPSTRAL_SCALE_FLOOR``, the least real speech varies."""
    extra = np.asarray(rows, dtype=np.float64)[:, inputs:]
    columns, cepstral_weight = cepstral
    if columns > extra.shape[1]:
        raise ParameterError(
            f"{columns} cepstral columns, but the rows carry {extra.shape[1]} after the bands"
        )
    if columns == 0 or cepstral_weight == 0:  # the cepstra, if any, left out
        return _band_spread(extra, weight, columns)
    kept = weight if weight > 0 else 1.0  # the spread's weight, or 1 with its columns left out
    bands = extra[:, : extra.shape[1] - columns]
    scale_of_bands = _band_scales(bands) if weight > 0 else np.full(bands.shape[1], np.inf)
    scale_of_cepstra = np.maximum(extra[:, bands.shape[1] :].std(axis=0), CEPSTRAL_SCALE_FLOOR)
    weights = np.concatenate([np.ones(bands.shape[1]), np.full(columns, cepstral_weight / kept)])
    return Spread(extra.mean(axis=0), np.concatenate([scale_of_bands, scale_of_cepstra]), kept,
                  weights)  # fmt: skip


def _band_spread(extra: np.ndarray, weight: float, cepstral: int) -> Spread | None:
    """The :class:`Spread` of the band spread alone (the last ``cepstral`` columns left out),
    as bundles made before the cepstra have it; None when there is none or ``weight`` is 0."""
    bands = extra.shape[1] - cepstral
    if bands == 0 or weight == 0:
        return None
    scale = np.concatenate([_band_scales(extra[:, :bands]), np.full(cepstral, np.inf)])
    return Spread(extra.mean(axis=0), scale, weight)


def _band_scales(bands: np.ndarray) -> np.ndarray:
    """One scale for every band-spread column of ``bands`` (n, S), the root mean square of
    their standard deviations; infinite for a column under ``MIN_SPREAD_DB``."""
    spread = bands.std(axis=0)
    measured = spread >= MIN_SPREAD_DB
    pooled = math.sqrt(float(np.mean(spread[measured] ** 2))) if measured.any() else 1.0
    return np.where(measured, pooled, np.inf)


@dataclass(frozen=True)
class Nuisance:
    """A unit ``direction`` (D,) in the open set's view along which a clip may move by up to
    ``limit`` either way at no cost to its distance (see the module's text)."""

    direction: np.ndarray
    limit: float

    def __post_init__(self) -> None:
        if self.direction.ndim != 1 or not np.all(np.isfinite(self.direction)):
            raise ParameterError("the noise direction must be a finite (D,) array")
        if abs(float(np.linalg.norm(self.direction)) - 1.0) > 1e-3:
            raise ParameterError(
                f"the noise direction must have length 1, not "
                f"{float(np.linalg.norm(self.direction)):.4g}"
            )
        if not (math.isfinite(self.limit) and self.limit > 0):
            raise ParameterError(f"the noise allowance's limit {self.limit!r} must be positive")

    def relief(self, along: np.ndarray) -> np.ndarray:
        """How much of a squared distance the move spares a difference whose component along the
        direction is ``along``: moved by ``a``, ``along`` clipped to the limit, the squared
        distance ``|d|^2`` becomes ``|d - a u|^2 = |d|^2 - a (2 along - a)``."""
        moved = np.clip(along, -self.limit, self.limit)
        return moved * (2 * along - moved)


NOISY = MATCHED_BY_AUGMENT["noise"]  # the matched condition of the training clips' noisy copies


def fit_nuisance(z: np.ndarray, copies: Copies | None, allowance: float) -> Nuisance | None:
    """The :class:`Nuisance` of training rows ``z`` (n, D) and their ``copies``: the direction of
    the mean shift from a clip to its noisy copy, and ``allowance`` times that shift's length as
    the limit; None when ``allowance`` is 0 or there are no noisy copies."""
    if copies is None or allowance == 0:
        return None
    noisy = copies.conditions == NOISY
    if not noisy.any():
        return None
    shift = np.mean(copies.rows[noisy].astype(np.float64) - z[copies.of[noisy]], axis=0)
    length = float(np.linalg.norm(shift))
    if not length > 0:
        return None
    return Nuisance(shift / length, allowance * length)


@dataclass(frozen=True)
class OpenSet:
    """Reference rows of every speaker and the distance threshold.

    references: (R, D) float32 standardised feature rows, grouped by speaker;
    offsets: (N + 1,) int64, speaker ``i``'s rows are ``references[offsets[i]:offsets[i + 1]]``;
    threshold: a clip farther than this from all its speaker's rows, in units of the speaker's
    scale, is unknown;
    scales: (N,) each speaker's scale (see the module's text); None: all 1;
    matched: the references and threshold for clips that resemble each degraded condition (see
    the module's text); a condition without one is judged as a clean clip is;
    hidden_weight: the weight of the hidden activations in the rows (:func:`open_set_view`);
    spread: how the rows measure the band spread after the histogram (:class:`Spread`); None:
    not at all (rows of the histogram alone, or a bundle made before it);
    nuisance: the room for noise (:class:`Nuisance`); None: none;
    envelopes: the spectral envelopes of voices taught with few takes
    (:class:`pipeline.envelope.Envelopes`); None: none, or a bundle made before them.
    """

    references: np.ndarray
    offsets: np.ndarray
    threshold: float
    scales: np.ndarray | None = None
    matched: Mapping[str, OpenSet] = field(default_factory=dict)
    hidden_weight: float = 0.0
    spread: Spread | None = None
    nuisance: Nuisance | None = None
    envelopes: Envelopes | None = None  # few-take voices' second witness (pipeline.envelope)
    # |r|^2 / 2 of each row, for d^2 = 2 (|r|^2 / 2 - r.z) + |z|^2 in one matrix-vector product
    # (halving and doubling are exact: the same d^2 as |r|^2 - 2 r.z + |z|^2, one product less)
    half_norms: np.ndarray = field(init=False, repr=False, compare=False)
    # the nuisance's direction as float32, and each row's component along it (empty without one)
    unit: np.ndarray = field(init=False, repr=False, compare=False)
    along: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.references.ndim != 2 or self.offsets.ndim != 1:
            raise ParameterError("open-set references must be (R, D) and offsets (N + 1,)")
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.references):
            raise ParameterError(
                f"open-set offsets run from {int(self.offsets[0])} to {int(self.offsets[-1])}, "
                f"not from 0 to the {len(self.references)} reference rows"
            )
        if np.any(np.diff(self.offsets) < 1):
            raise ParameterError("every speaker needs at least one open-set reference row")
        scales = np.ones(self.n_speakers) if self.scales is None else self.scales
        scales = np.asarray(scales, dtype=np.float64)
        if scales.shape != (self.n_speakers,) or not np.all(np.isfinite(scales) & (scales > 0)):
            raise ParameterError(
                f"open-set scales must be {self.n_speakers} positive numbers, one per speaker"
            )
        object.__setattr__(self, "scales", scales)
        norms = np.einsum("ij,ij->i", self.references, self.references)
        object.__setattr__(self, "half_norms", norms / 2)
        unit = along = np.zeros(0, dtype=np.float32)
        if self.nuisance is not None:
            if self.nuisance.direction.shape != (self.references.shape[1],):
                raise ParameterError(
                    f"the noise direction has {self.nuisance.direction.shape[0]} numbers, the "
                    f"reference rows {self.references.shape[1]}"
                )
            unit = self.nuisance.direction.astype(np.float32)
            along = self.references @ unit
        object.__setattr__(self, "unit", unit)
        object.__setattr__(self, "along", along)
        if self.envelopes is not None and len(self.envelopes.radii) != self.n_speakers:
            raise ParameterError(
                f"the envelopes are for {len(self.envelopes.radii)} speakers, the open set's "
                f"rows for {self.n_speakers}"
            )

    @property
    def n_speakers(self) -> int:
        return len(self.offsets) - 1

    def distance(self, z: np.ndarray, speaker: int) -> float:
        """Distance from one standardised row ``z`` (D,) to the nearest row of ``speaker``, in
        units of the speaker's scale."""
        start, stop = self.offsets[speaker], self.offsets[speaker + 1]
        z32 = np.asarray(z, dtype=np.float32)  # no copy when it is float32 already
        half = self.half_norms[start:stop] - self.references[start:stop] @ z32
        if self.nuisance is None:
            squared = 2 * float(np.minimum.reduce(half)) + float(z32 @ z32)
        else:  # each row's squared distance less what the move along the direction spares
            along = float(z32 @ self.unit) - self.along[start:stop]
            spared = 2 * half - self.nuisance.relief(along)
            squared = float(np.minimum.reduce(spared)) + float(z32 @ z32)
        assert self.scales is not None  # set by __post_init__
        return math.sqrt(max(squared, 0.0)) / self.scales[speaker]

    def distances(self, z: np.ndarray, speakers: np.ndarray) -> np.ndarray:
        """(B,) distances of standardised rows ``z`` (B, D) to their ``speakers``' nearest rows."""
        return np.array([self.distance(row, int(s)) for row, s in zip(z, speakers, strict=True)])

    def judge(self, z: np.ndarray, speaker: int, condition: str) -> tuple[float, float]:
        """The distance of a standardised row ``z`` (D,) whose recording resembles ``condition``
        to ``speaker``, and the threshold it is held to: against the clean references, or the
        condition's matched ones where that passes more easily (a clean clip taken for a
        degraded one is never refused for it)."""
        clean = self.distance(z, speaker), self.threshold
        matched = self.matched.get(condition)
        if matched is None:
            return clean
        other = matched.distance(z, speaker), matched.threshold
        return min(clean, other, key=lambda pair: pair[0] / pair[1] if pair[1] > 0 else math.inf)


class Decided(NamedTuple):
    """What :meth:`Decision.decide` makes of feature rows (B, D): the hidden activations (B, H),
    the scores (B, N), each row's distance (B,) to the voice it is answered as (0 without an
    open set), why it is unknown (None when it is named), and that voice (B,): the top-scored
    one, or the runner-up where the top one is far and it is near (see the module's text)."""

    hidden: np.ndarray
    scores: np.ndarray
    distance: np.ndarray
    reasons: list[Reason | None]
    voices: np.ndarray


@dataclass(frozen=True)
class Decision:
    """The whole answer for feature rows: the network's scores, and whether each is accepted."""

    network: Network
    unsure_below: float
    open_set: OpenSet | None = None

    def decide(
        self,
        rows: np.ndarray,
        recording_issues: Sequence[Sequence[Issue]] | None = None,
        conditions: Sequence[str] | None = None,
        envelope_of: Callable[[int], np.ndarray | None] | None = None,
    ) -> Decided:
        """The :class:`Decided` answer for raw feature rows (B, D), given each row's recording
        issues and the condition its recording resembles (``pipeline.quality.conditions``;
        clean when not given). With ``envelope_of`` (row index: that clip's
        :func:`pipeline.envelope.envelope`, measured only when asked), a clean clip refused as
        "far" is named when its envelope lies within the radius of a voice taught with few takes:
        its top voice, where the network is sure of it, or else its runner-up."""
        rows = np.asarray(rows, dtype=np.float64)
        standardised = self.network.standardise(rows)
        hidden, scores = self.network.forward_standardised(standardised)
        top = scores.argmax(axis=1)
        voices = top.copy()
        kinds = list(conditions) if conditions is not None else ["clean"] * len(rows)
        distance, threshold = np.zeros(len(rows)), np.full(len(rows), math.inf)
        if self.open_set is not None:
            # As float32 once for the batch, as OpenSet.distance reads it.
            weights = (self.open_set.hidden_weight, self.open_set.spread)
            z = _view(rows, standardised, hidden, weights).astype(np.float32)
            for i, kind in enumerate(kinds):
                distance[i], threshold[i] = self.open_set.judge(z[i], int(top[i]), kind)
                if distance[i] > threshold[i] and scores.shape[1] > 1:
                    second = _runner_up(scores[i], int(top[i]))
                    near, limit = self.open_set.judge(z[i], second, kind)
                    if near <= limit:  # far from the top voice, near the runner-up
                        voices[i], distance[i], threshold[i] = second, near, limit
        flawed = [bool(i) for i in recording_issues] if recording_issues else [False] * len(rows)
        ranked = np.sort(scores, axis=1)
        runner_up = ranked[:, -2] if scores.shape[1] > 1 else np.zeros(len(rows))
        reasons = [
            None
            if voice != first  # the runner-up, named where it is near
            else self.reason(float(d), float(score), has_issue, float(t), float(other))
            for d, score, has_issue, t, other, voice, first in zip(
                distance, ranked[:, -1], flawed, threshold, runner_up, voices, top, strict=True
            )
        ]
        if envelope_of is not None and self.open_set is not None:
            for i in range(len(rows)):
                if reasons[i] == "far" and kinds[i] == "clean" and voices[i] == top[i]:
                    named = self._by_envelope(scores[i], int(top[i]), partial(envelope_of, i))
                    if named is not None:
                        reasons[i], voices[i] = None, named
                        distance[i] = self.open_set.distance(z[i], named)
        return Decided(hidden, scores, distance, reasons, voices)

    def _by_envelope(
        self, scores: np.ndarray, top: int, measure: Callable[[], np.ndarray | None]
    ) -> int | None:
        """The voice a clean clip refused as "far" is named by its envelope (``measure``, called
        at most once, and only where a voice has an envelope): the top voice where the network is
        sure of it, else the runner-up, as the distance's runner-up rule names it; None."""
        envelopes = self.open_set.envelopes if self.open_set is not None else None
        if envelopes is None or len(scores) < 2:
            return None
        second = _runner_up(scores, top)
        sure = self.sure(float(scores[top]), float(scores[second]))
        candidates = [v for v in ((top,) if sure else ()) + (second,) if envelopes.has(v)]
        row = measure() if candidates else None
        if row is None:
            return None
        return next((v for v in candidates if envelopes.near(row, v)), None)

    def sure(self, top_score: float, runner_up: float) -> bool:
        """Whether the network is sure of its top voice: its score reaches ``unsure_below`` and
        ``UNSURE_ODDS`` times the runner-up's."""
        return top_score >= self.unsure_below and top_score >= UNSURE_ODDS * runner_up

    def reason(
        self,
        distance: float,
        top_score: float,
        poor_recording: bool,
        threshold: float | None = None,
        runner_up: float = 0.0,
    ) -> Reason | None:
        """Why a clip at ``distance`` with ``top_score`` (and ``runner_up``, the second
        highest score) is unknown, None when it is not; a refused clip of a ``poor_recording``
        is refused for its recording. ``threshold`` is the distance threshold of the condition
        the clip resembles (the open set's own when not given). A clip is unsure below
        ``unsure_below`` or under ``UNSURE_ODDS`` times the runner-up's score."""
        if threshold is None:
            threshold = math.inf if self.open_set is None else self.open_set.threshold
        if distance <= threshold and self.sure(top_score, runner_up):
            return None
        if poor_recording:
            return "poor_recording"
        return "far" if distance > threshold else "unsure"


def _runner_up(scores: np.ndarray, top: int) -> int:
    """The voice of (N,) ``scores``, N > 1, scored highest after voice ``top`` (the other of a
    tie with it)."""
    others = scores.copy()
    others[top] = -np.inf
    return int(others.argmax())


def _view(
    rows: np.ndarray, z: np.ndarray, hidden: np.ndarray, weights: tuple[float, Spread | None]
) -> np.ndarray:
    """Raw rows ``rows`` as :func:`open_set_view` shows them, given the network's standardised
    inputs ``z`` (B, D) and ``hidden`` activations (B, H): ``z``, then ``hidden`` times the
    hidden weight unless it is 0, then the band spread after the D inputs unless there is none."""
    hidden_weight, spread = weights
    parts = [z] + ([hidden_weight * hidden] if hidden_weight > 0 else [])
    if spread is not None:
        parts.append(spread.view(rows, z.shape[1]))
    return np.concatenate(parts, axis=1) if len(parts) > 1 else z


def open_set_view(
    network: Network, rows: np.ndarray, hidden_weight: float, spread: Spread | None = None
) -> np.ndarray:
    """Raw feature rows (B, D [+ S]) as the open set measures them: the network's D inputs
    standardised, then (unless ``hidden_weight`` is 0) its hidden activations times
    ``hidden_weight``, then (with a ``spread``) the S numbers of band spread as it measures
    them."""
    rows = np.asarray(rows, dtype=np.float64)
    z = network.standardise(rows)
    return _view(rows, z, network.forward_standardised(z)[0], (hidden_weight, spread))


def _distinct(rows: np.ndarray) -> np.ndarray:
    """Indices of ``rows`` without repeats, in their first order: the same clip twice counts
    once."""
    _, first = np.unique(rows, axis=0, return_index=True)
    return np.sort(first)


def _farthest_points(rows: np.ndarray, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``rows``, spread out: each next one is the farthest from
    those taken. Deterministic: it starts from the row nearest the mean."""
    if len(rows) <= limit:
        return np.arange(len(rows))
    taken = [int(np.argmin(((rows - rows.mean(axis=0)) ** 2).sum(axis=1)))]
    nearest = ((rows - rows[taken[0]]) ** 2).sum(axis=1)
    for _ in range(limit - 1):
        taken.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, ((rows - rows[taken[-1]]) ** 2).sum(axis=1))
    return np.sort(taken)


def _kept(rows: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the distinct ``rows`` a speaker keeps as references, at most ``limit``."""
    distinct = _distinct(rows)
    return distinct[_farthest_points(rows[distinct], limit)]


def leave_one_out_distances(rows: np.ndarray, nuisance: Nuisance | None = None) -> np.ndarray:
    """(n,) distance from each of ``rows`` (n, D) to its nearest other row, with room for the
    ``nuisance`` if any; inf when alone."""
    return leave_one_recording_out_distances(
        rows, np.arange(len(rows)), np.ones(len(rows), bool), nuisance
    )


def leave_one_recording_out_distances(
    rows: np.ndarray, recordings: np.ndarray, judged: np.ndarray, nuisance: Nuisance | None = None
) -> np.ndarray:
    """Distance from each of the ``judged`` rows (a (n,) bool mask of ``rows`` (n, D)) to the
    nearest row of another recording (``recordings``: (n,) one id per row), with room for the
    ``nuisance`` if any; inf when none."""
    squared = np.einsum("ij,ij->i", rows, rows)
    picked = rows[judged]
    gram = squared[judged][:, None] - 2 * picked @ rows.T + squared[None, :]
    if nuisance is not None:
        along = rows @ nuisance.direction
        gram -= nuisance.relief(along[judged][:, None] - along[None, :])
    gram[recordings[judged][:, None] == recordings[None, :]] = np.inf
    return np.sqrt(np.maximum(gram.min(axis=1, initial=np.inf), 0.0))


def equal_weight_quantile(values: Sequence[np.ndarray], q: float) -> float:
    """The ``q`` quantile of the pooled ``values``, each array weighing the same in all (each
    value ``1 / len`` of its own array), the lower value at a step; inf when there are none."""
    parts = [v[np.isfinite(v)] for v in values]
    parts = [v for v in parts if v.size]
    if not parts:
        return math.inf
    pooled = np.concatenate(parts)
    weights = np.concatenate([np.full(v.size, 1.0 / v.size) for v in parts])
    order = np.argsort(pooled, kind="stable")
    cumulative = np.cumsum(weights[order]) / len(parts)
    index = min(int(np.searchsorted(cumulative, q - 1e-12)), len(pooled) - 1)
    return float(pooled[order][index])


@dataclass(frozen=True)
class Copies:
    """Degraded copies of training clips, for condition-matched references: standardised rows
    ``rows`` (m, D), the index ``of`` the clean row each is a copy of (m,), and the condition
    a clip made under theirs resembles (``pipeline.quality.conditions.MATCHED``), "" for none
    (m,)."""

    rows: np.ndarray
    of: np.ndarray
    conditions: np.ndarray


def calibrate(
    z: np.ndarray,
    labels: np.ndarray,
    n_speakers: int,
    quantile: float,
    *,
    limit: int = MAX_REFERENCES_PER_SPEAKER,
    copies: Copies | None = None,
    copy_quantile: float = 0.15,
    hidden_weight: float = 0.0,
    inputs: int | None = None,
    spread: Spread | None = None,
    nuisance: Nuisance | None = None,
) -> tuple[OpenSet, np.ndarray]:
    """An :class:`OpenSet` from training rows ``z`` (n, D) as :func:`open_set_view` makes them
    with ``hidden_weight``, with integer ``labels``, whose threshold keeps ``1 - quantile`` of
    them by leave-one-out, each speaker weighing the same; also those distances, scaled. With
    ``copies`` of those rows, a matched open set for each condition they were made under, whose
    threshold keeps ``1 - copy_quantile`` of them by leave-one-recording-out (see the module's
    text). ``inputs``: how many of ``z``'s columns are the network's standardised input (all of
    them when None); the rest are the hidden view's, which the few-take cap leaves out, and the
    band ``spread``'s, recorded in the open set (its columns count in the cap as the inputs do:
    each has unit variance over the training clips, times its weight). With a ``nuisance``, the
    clean distances make room for it (see the module's text); the matched ones do not."""
    for name, value in (("quantile", quantile), ("copy_quantile", copy_quantile)):
        if not 0 <= value < 1:
            raise ParameterError(f"{name}={value!r} must be in [0, 1)")
    parts, loo = [], []
    for speaker in range(n_speakers):
        rows = z[labels == speaker].astype(np.float32)
        if len(rows) == 0:
            raise ParameterError(f"speaker {speaker} has no training rows for the open set")
        parts.append(rows[_kept(rows, limit)])
        loo.append(leave_one_out_distances(parts[-1].astype(np.float64), nuisance))
    dimension = effective_dimension(parts, loo=loo, nuisance=nuisance)
    # the few-take cap stays where other voices lie in the standardised input alone: measured
    # with the hidden view on (bench.enrol's FSDD rows), a cap widened by the hidden columns'
    # spread let 34 of 120 strangers into voices taught with mixed words, this one 11
    standardised = z.shape[1] if inputs is None else inputs
    if spread is not None:
        standardised += spread.variance
    rms = math.sqrt(standardised)
    few = _few_takes(loo)
    cap = few_take_cap(spread)
    threshold, scales = _threshold_and_scales(loo, few, dimension, quantile, (rms, cap))
    if not math.isfinite(threshold):
        raise ParameterError(
            f"the training rows give no finite open-set distances (threshold={threshold!r}): "
            "their values are too large or not numbers"
        )
    scaled = [d / s for d, s in zip(loo, scales, strict=True)]
    matched = {}
    if copies is not None:
        matched = _matched(z, labels, n_speakers, copies, copy_quantile, (limit, dimension),
                           (few, cap * rms))  # fmt: skip
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    open_set = OpenSet(np.concatenate(parts), offsets, threshold, scales, matched, hidden_weight,
                       spread, nuisance)  # fmt: skip
    return open_set, np.concatenate(scaled)


def _matched(
    z: np.ndarray, labels: np.ndarray, n_speakers: int, copies: Copies, quantile: float,
    limit_and_dimension: tuple[int, float], few_and_cap: tuple[np.ndarray, float],
) -> dict[str, OpenSet]:  # fmt: skip
    """For each condition of ``copies``, every speaker's clean rows and copies made under it,
    and the threshold that keeps ``1 - quantile`` of those copies by leave-one-recording-out.
    As in the clean open set, voices of few clean takes beside measured ones (``few``,
    :func:`_few_takes`) set no threshold, and their radius stays within ``cap``: their copies,
    a dozen takes' worth, would otherwise weigh as much as a measured voice's hundreds, and the
    copies' wider spread would carry their radius past where other people's voices lie (measured on
    ``bench/enrol.py``'s FSDD rows taught with mixed words: strangers' noisy or band-limited
    clips let in by the copies, 5 of 120, none with the cap)."""
    limit, dimension = limit_and_dimension
    few, cap = few_and_cap
    matched = {}
    for condition in sorted(set(copies.conditions.tolist()) - {""}):
        parts, loo = [], []
        for speaker in range(n_speakers):
            clean = np.flatnonzero(labels == speaker)
            made = (copies.conditions == condition) & (labels[copies.of] == speaker)
            theirs = np.flatnonzero(made)
            rows = np.concatenate([z[clean], copies.rows[theirs]]).astype(np.float32)
            recordings = np.concatenate([clean, copies.of[theirs]])
            keep = _kept(rows, limit)
            parts.append(rows[keep])
            judged = keep >= len(clean)  # the copies are judged, the clean rows were
            loo.append(leave_one_recording_out_distances(
                parts[-1].astype(np.float64), recordings[keep], judged))  # fmt: skip
        # the measured voices' median count, so that their scales are as they were
        scales = count_scales(np.array([len(p) for p in parts]), dimension, among=~few)
        threshold = equal_weight_quantile(
            [d / s for d, s, f in zip(loo, scales, few, strict=True) if not f], 1 - quantile
        )
        if math.isfinite(threshold):
            if threshold > 0:
                scales[few] = np.minimum(scales[few], cap / threshold)
            offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
            matched[condition] = OpenSet(np.concatenate(parts), offsets, threshold, scales)
    return matched


def _few_takes(loo: Sequence[np.ndarray]) -> np.ndarray:
    """Which speakers, given their leave-one-out distances ``loo``, have fewer than
    ``MIN_CLIPS_TO_MEASURE`` rows beside speakers with more (:func:`few_take_voices`)."""
    return few_take_voices(np.array([len(d) for d in loo]))


def few_take_voices(counts: np.ndarray) -> np.ndarray:
    """Which speakers, given their reference rows' ``counts``, have fewer than
    ``MIN_CLIPS_TO_MEASURE`` beside speakers with more; none when all or none have that many,
    since then no speaker can set the others' threshold and every one counts."""
    few = np.asarray(counts) < MIN_CLIPS_TO_MEASURE
    return few if few.any() and not few.all() else np.zeros(len(few), dtype=bool)


def _threshold_and_scales(
    loo: Sequence[np.ndarray],
    few: np.ndarray,
    dimension: float,
    quantile: float,
    reach: tuple[float, float],
) -> tuple[float, np.ndarray]:
    """The threshold and each speaker's scale. The threshold and the scales of the measured
    speakers come from those alone (so teaching a voice leaves theirs as they were), and each
    of the ``few`` (:func:`_few_takes`) gets its few-take radius (:func:`few_take_radii` of
    ``reach``: the rows' RMS spread and the cap in units of it) over the threshold."""
    scales = count_scales(np.array([len(d) for d in loo]), dimension, among=~few)
    scaled = [d / s for d, s, f in zip(loo, scales, few, strict=True) if not f]
    threshold = equal_weight_quantile(scaled, 1 - quantile)
    if few.any():
        scales[few] = few_take_radii([d for d, f in zip(loo, few, strict=True) if f],
                                     reach[0], threshold, reach[1]) / threshold  # fmt: skip
    return threshold, scales


DEFAULT_DIMENSION = 5.0  # d without a speaker of enough clips to measure it (the demo voices')
MIN_CLIPS_TO_MEASURE = 40  # a speaker's rows subsampled to a quarter must still hold 10
DIMENSION_RANGE = (2.0, 20.0)


def effective_dimension(
    parts: Sequence[np.ndarray],
    seed: int = 0,
    loo: Sequence[np.ndarray] | None = None,
    nuisance: Nuisance | None = None,
) -> float:
    """``d`` in "nearest-neighbour distances grow as ``n ** (-1 / d)``": from how the median
    leave-one-out distance of each speaker with ``MIN_CLIPS_TO_MEASURE`` rows or more grows when
    a quarter of its rows is kept (the median over speakers and five draws), within
    ``DIMENSION_RANGE``; ``DEFAULT_DIMENSION`` when no speaker has enough rows."""
    rng = np.random.default_rng(seed)
    if loo is None:  # each part's leave-one-out distances, when the caller has none at hand
        loo = [leave_one_out_distances(rows.astype(np.float64), nuisance) for rows in parts]
    estimates = []
    for rows, distances in zip(parts, loo, strict=True):
        n = len(rows)
        full = float(np.median(distances)) if n else 0.0
        if n < MIN_CLIPS_TO_MEASURE or full <= 0:
            continue
        thinned = [
            np.median(leave_one_out_distances(rows[rng.choice(n, n // 4, replace=False)], nuisance))
            for _ in range(5)
        ]
        ratio = float(np.median(thinned)) / full
        if ratio > 1:
            estimates.append(math.log(4) / math.log(ratio))
    if not estimates:
        return DEFAULT_DIMENSION
    return float(np.clip(np.median(estimates), *DIMENSION_RANGE))


def count_scales(
    counts: np.ndarray, dimension: float, among: np.ndarray | None = None
) -> np.ndarray:
    """Each speaker's scale ``(median count / its count) ** (1 / dimension)``, the median of
    the speakers ``among`` (a bool mask; all when None)."""
    counts = np.asarray(counts, dtype=np.float64)
    median = np.median(counts if among is None else counts[among])
    return np.asarray((median / counts) ** (1.0 / dimension))


FEW_TAKES_MARGIN = 2.0  # a few-take voice's radius: at least twice the median gap between its
# takes, and at least their widest gap ...
FEW_TAKES_CAP = 1.0  # ... but at most this many times sqrt(D), a training row's RMS distance
# from the centre of all of them (every band has unit variance in the standardised space). Where
# other people lie, measured on bench/enrol.py's FSDD rows (each speaker taught a dozen takes, the
# other five speakers' clips as strangers, in-process): before the cepstral correlations, at 1.0,
# 6 of 120 strangers' clips were named as voices taught "zero" and 12 as voices taught mixed
# words; at 0.9, 4 and 5, with the same 43 of 48 fresh takes of "zero" named, and 21 of 48 fresh
# takes of mixed words, not 26. With them, on 25 fresh takes a speaker and 145 strangers' clips
# the benchmark does not use: at 0.9, 0.927 of the fresh takes of "zero" named and 12 of 870
# strangers' clips taken, 0.373 and 0 for mixed words; at 1.0, 0.947 and 36, 0.533 and 6 (before
# them, at 0.9: 0.947 and 38 of 870, 0.587 and 11).
FEW_TAKES_CAP_WITHOUT_CEPSTRA = 0.9  # the cap of a view without them (bundles made before them)


def few_take_cap(spread: Spread | None) -> float:
    """The few-take cap, in units of sqrt(D), of an open set that measures ``spread``:
    ``FEW_TAKES_CAP`` where it weighs the cepstral correlations (only :func:`fit_spread` with
    them gives column weights), else ``FEW_TAKES_CAP_WITHOUT_CEPSTRA``, as it was measured."""
    weighs_cepstra = spread is not None and spread.column_weights is not None
    return FEW_TAKES_CAP if weighs_cepstra else FEW_TAKES_CAP_WITHOUT_CEPSTRA


def few_take_radii(
    loo: Sequence[np.ndarray], spread: float, floor: float = 0.0, cap: float = FEW_TAKES_CAP
) -> np.ndarray:
    """Each speaker's radius, in standardised units, for voices with too few takes to place the
    threshold's tail themselves: the larger of ``FEW_TAKES_MARGIN`` times the median of its
    leave-one-out distances ``loo`` and the largest of them (a fresh take from another sitting
    lands farther than a dozen takes lie from one another), and at least ``floor`` (the measured
    voices' threshold: a voice whose takes are all but identical has shown no spread of its own,
    and is held no tighter than the voices that have), at most ``cap * spread``, about
    where other people's voices lie from its takes whatever their spread (``bench/enrol.py``'s
    FSDD rows), ``spread`` being the root-mean-square distance of a standardised row from the
    centre of all (``sqrt(D)`` for D bands); the cap for a voice of one take."""
    radii = []
    for distances in loo:
        finite = distances[np.isfinite(distances)]
        radii.append(max(FEW_TAKES_MARGIN * float(np.median(finite)), float(finite.max()), floor)
                     if finite.size else math.inf)  # fmt: skip
    return np.minimum(np.array(radii), cap * spread)


def fit_envelopes(rows: Sequence[np.ndarray | None], margin: float) -> Envelopes:
    """:class:`pipeline.envelope.Envelopes` from each speaker's envelope rows (k, 2 * ORDER), None
    for a voice judged by the open set alone: as :func:`few_take_radii` places a radius, ``margin``
    times the median distance from each row to its nearest other one, at most
    ``pipeline.envelope.CAP * sqrt(2 * ORDER)``; none at all (no rows) when that spread passes
    ``pipeline.envelope.SPREAD_LIMIT * sqrt(2 * ORDER)``: takes of many words. A voice of one row
    has no spread to measure and gets the cap."""
    cap, limit = ENVELOPE_CAP * math.sqrt(2 * ORDER), SPREAD_LIMIT * math.sqrt(2 * ORDER)
    kept, radii = [], []
    for speaker_rows in rows:
        r = np.zeros((0, 2 * ORDER)) if speaker_rows is None else np.asarray(speaker_rows, float)
        spread = margin * float(np.median(leave_one_out_distances(r))) if len(r) > 1 else 0.0
        if len(r) == 0 or spread > limit:
            kept.append(np.zeros((0, 2 * ORDER)))
            radii.append(0.0)
        else:
            kept.append(r)
            radii.append(min(spread, cap) if len(r) > 1 else cap)
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in kept])]).astype(np.int64)
    return Envelopes(np.concatenate(kept).astype(np.float32), offsets, np.array(radii))


def auroc(known: np.ndarray, unknown: np.ndarray) -> float | None:
    """Area under the ROC curve for telling ``unknown`` scores from ``known`` ones, where a
    higher score means "more likely unknown" (0.5: chance, 1: perfect); None without both."""
    if len(known) == 0 or len(unknown) == 0:
        return None
    scores = np.concatenate([known, unknown])
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="mergesort")
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # ties share their mean rank
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    u = ranks[len(known) :].sum() - len(unknown) * (len(unknown) + 1) / 2
    return float(u / (len(known) * len(unknown)))


def save_open_set(open_set: OpenSet, path: Path) -> None:
    """Write the reference rows, offsets and scales to ``path`` as an uncompressed ``.npz`` (no
    pickles), each matched condition's under its name (``telephone.references``, ...); the
    thresholds live in the bundle's metadata."""
    arrays = {"references": open_set.references, "offsets": open_set.offsets,
              "scales": np.asarray(open_set.scales)}  # fmt: skip
    if open_set.spread is not None:
        arrays |= {"spread.mean": open_set.spread.mean, "spread.scale": open_set.spread.scale}
        if open_set.spread.column_weights is not None:
            arrays["spread.column_weights"] = open_set.spread.column_weights
    if open_set.nuisance is not None:
        arrays["noise.direction"] = open_set.nuisance.direction
    for condition, matched in open_set.matched.items():
        arrays |= {f"{condition}.{name}": value for name, value in (
            ("references", matched.references), ("offsets", matched.offsets),
            ("scales", np.asarray(matched.scales)))}  # fmt: skip
    if open_set.envelopes is not None:
        envelopes = open_set.envelopes
        arrays["envelope.references"] = envelopes.references
        arrays["envelope.offsets"] = envelopes.offsets
        arrays["envelope.radii"] = envelopes.radii
    with path.open("wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def load_open_set(
    path: Path,
    threshold: float,
    n_speakers: int,
    n_inputs: int,
    matched: Mapping[str, float] | None = None,
    hidden_weight: float = 0.0,
    spread_weight: float = 0.0,
    noise_limit: float = 0.0,
) -> OpenSet:
    """The :class:`OpenSet` in ``path`` for ``n_speakers`` and rows of ``n_inputs`` columns
    (:func:`open_set_view`'s with ``hidden_weight`` and, unless ``spread_weight`` is 0, the band
    spread), with the ``matched`` conditions' (name: threshold; none for a bundle made before
    them) and, unless ``noise_limit`` is 0, room for noise up to it along the direction the file
    holds; :class:`BundleError` naming what is wrong when it is unreadable or does not fit."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, EOFError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    conditions = {
        condition: _open_set_of(arrays, f"{condition}.", path, limit, n_speakers, n_inputs)
        for condition, limit in (matched or {}).items()
    }
    spread = _spread_of(arrays, path, spread_weight) if spread_weight > 0 else None
    nuisance = _nuisance_of(arrays, path, noise_limit, n_inputs) if noise_limit > 0 else None
    found = _open_set_of(arrays, "", path, threshold, n_speakers, n_inputs, conditions)
    envelopes = _envelopes_of(arrays, path, n_speakers)
    return dataclasses.replace(found, hidden_weight=hidden_weight, spread=spread,
                               nuisance=nuisance, envelopes=envelopes)  # fmt: skip


def _envelopes_of(
    arrays: Mapping[str, np.ndarray], path: Path, n_speakers: int
) -> Envelopes | None:
    """The :class:`Envelopes` of the arrays ``envelope.*``; None where there are none (no voice
    taught with few takes, or a bundle made before them)."""
    if "envelope.references" not in arrays:
        return None
    try:
        envelopes = Envelopes(
            np.asarray(arrays["envelope.references"], dtype=np.float32),
            np.asarray(arrays["envelope.offsets"], dtype=np.int64),
            np.asarray(arrays["envelope.radii"], dtype=np.float64),
        )
    except (KeyError, ValueError, TypeError, ParameterError) as exc:
        raise BundleError(f"{path}: the envelope arrays do not fit: {exc}") from exc
    if len(envelopes.radii) != n_speakers:
        raise BundleError(
            f"{path}: envelope radii for {len(envelopes.radii)} speakers, the model has "
            f"{n_speakers}"
        )
    return envelopes


def _nuisance_of(
    arrays: Mapping[str, np.ndarray], path: Path, limit: float, n_inputs: int
) -> Nuisance:
    """The :class:`Nuisance` whose direction is the array ``noise.direction``."""
    try:
        if "noise.direction" not in arrays:
            raise ValueError("it lacks noise.direction")
        direction = np.asarray(arrays["noise.direction"], dtype=np.float64)
        if direction.shape != (n_inputs,):
            raise ValueError(
                f"noise.direction has shape {direction.shape}, the reference rows {n_inputs} "
                "numbers"
            )
        return Nuisance(direction, limit)
    except (ValueError, TypeError, ParameterError) as exc:
        raise BundleError(f"{path}: cannot read the noise direction: {exc}") from exc


def _spread_of(arrays: Mapping[str, np.ndarray], path: Path, weight: float) -> Spread:
    """The :class:`Spread` whose arrays are ``spread.mean``, ``spread.scale`` and (in bundles
    that weigh cepstral correlations) ``spread.column_weights``."""
    try:
        missing = [name for name in ("spread.mean", "spread.scale") if name not in arrays]
        if missing:
            raise ValueError(f"it lacks {' and '.join(missing)}")
        mean = np.asarray(arrays["spread.mean"], dtype=np.float64)
        scale = np.asarray(arrays["spread.scale"], dtype=np.float64)
        weights = arrays.get("spread.column_weights")
        columns = None if weights is None else np.asarray(weights, dtype=np.float64)
        return Spread(mean, scale, weight, columns)
    except (ValueError, TypeError, ParameterError) as exc:
        raise BundleError(f"{path}: cannot read the band spread's standardisation: {exc}") from exc


def _open_set_of(
    arrays: Mapping[str, np.ndarray], prefix: str, path: Path, threshold: float,
    n_speakers: int, n_inputs: int, matched: Mapping[str, OpenSet] | None = None,
) -> OpenSet:  # fmt: skip
    """The open set whose arrays are named ``prefix`` + references, offsets, scales."""
    try:
        references = np.asarray(arrays[f"{prefix}references"], dtype=np.float32)
        offsets = np.asarray(arrays[f"{prefix}offsets"], dtype=np.int64)
        scales = arrays.get(f"{prefix}scales")
        scales = None if scales is None else np.asarray(scales, np.float64)
    except (KeyError, ValueError, TypeError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    if (
        references.ndim != 2
        or references.shape[1] != n_inputs
        or offsets.shape != (n_speakers + 1,)
    ):
        raise BundleError(
            f"{path}: {prefix}references {references.shape} and offsets {offsets.shape} do not "
            f"fit a network of {n_inputs} inputs and {n_speakers} speakers"
        )
    if not np.all(np.isfinite(references)):
        raise BundleError(f"{path}: the {prefix}reference rows hold non-finite values")
    try:
        return OpenSet(references, offsets, threshold, scales, matched or {})
    except ParameterError as exc:
        raise BundleError(f"{path}: {exc}") from exc
