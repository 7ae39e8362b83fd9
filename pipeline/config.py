"""Frozen configuration objects. The feature config is saved in every bundle and read back by
whoever predicts, so training and serving cannot drift apart."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

from pipeline.errors import ParameterError

__all__ = ["BAND_SPREAD", "CEPSTRA", "DEFAULT_SAMPLE_RATE", "MAX_CANDIDATES", "MAX_COPIES",
           "MAX_OPEN_SET_WEIGHT", "MAX_SEED", "Device", "FeatureConfig", "Loss", "TrainConfig",
           "check_copies", "check_jobs", "check_seed", "default_fmax", "derived_feature_config",
           "hidden_units", "option"]  # fmt: skip

T = TypeVar("T")

DEFAULT_SAMPLE_RATE = 16_000  # Hz; every clip is resampled to this before analysis
MIN_CLIPS_PER_SPEAKER = 4  # training needs at least one validation clip and a few to learn from
NYQUIST_MARGIN = 0.95  # resamplers roll off just below Nyquist: keep the top band clear of it
MAX_SEED = 2**32 - 1  # the largest seed Keras's set_random_seed takes
# Most networks trained side by side: each holds its weights and optimiser state in memory.
MAX_CANDIDATES = 64
# A feature config's sane ranges: telephone to studio rates, and analysis frames from 2 ms to
# most of a second at those rates. A bundle's config beyond them is damaged, and would make
# every clip cost gigabytes or describe nothing.
SAMPLE_RATES = (8_000, 192_000)  # Hz
N_FFT_RANGE = (32, 16_384)  # samples
# Heaviest weight of the hidden view or the band spread beside the standardised histogram in
# the open set's distances; far heavier ones only overflow them.
MAX_OPEN_SET_WEIGHT = 1000.0
# Degraded copies of each clip, in training and in a feature table: each is one more pass of
# decoding-sized work over the clip, and the conditions they draw from are a dozen.
MAX_COPIES = 32


def default_fmax(lowest_source_rate: int, sample_rate: int = DEFAULT_SAMPLE_RATE) -> float:
    """Upper band edge (Hz) for training data whose lowest original rate is ``lowest_source_rate``.

    An 8 kHz recording holds nothing above 4 kHz, so bands above that would only describe the
    resampler. ``default_fmax(8000) == 3800.0``.
    """
    if lowest_source_rate <= 0:
        raise ParameterError(f"lowest_source_rate={lowest_source_rate} must be a positive rate")
    return NYQUIST_MARGIN * min(lowest_source_rate, sample_rate) / 2


def option(default: T, help: str, *, flag: str | None = None, off: str | None = None) -> T:
    """A config field that is also a command-line option: its default, its help text, and its
    flag when that is not ``--<field-name>``. The CLI and the benchmarks derive their options
    from these (``voiceid.options``); choices come from the field's ``Literal`` type.

    A switch that is on by default is turned off by ``--no-<field-name>``: ``off`` says what that
    flag does, since ``help`` says what the switch does when on.
    """
    if default is True and not off:
        raise TypeError(f"option(True, {help!r}) needs off=: the help of its --no- flag")
    metadata = {"help": help} | ({"flag": flag} if flag else {}) | ({"off": off} if off else {})
    return field(default=default, metadata=metadata)


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ParameterError(f"{name}={value!r} must be a positive number")


def _whole_number(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ParameterError(f"{name}={value!r} must be a whole number from {low} to {high}")


def check_seed(name: str, value: object) -> None:
    """Raise :class:`ParameterError` unless the seed ``name`` is one training can use."""
    _whole_number(name, value, 0, MAX_SEED)


def check_copies(name: str, value: object, *, low: int = 0) -> None:
    """Raise :class:`ParameterError` unless ``name`` is a count of degraded copies from ``low``
    to ``MAX_COPIES``."""
    _whole_number(name, value, low, MAX_COPIES)


def check_jobs(name: str, value: object) -> None:
    """Raise :class:`ParameterError` unless the process count ``name`` is None (every core) or
    a positive integer."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ParameterError(f"{name}={value!r} must be a positive integer")


def _positive_ints(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name}={value!r} must be a positive integer")


@dataclass(frozen=True)
class FeatureConfig:
    """How a waveform becomes the 60-bin frequency histogram (see ``pipeline.features``).

    sample_rate: Hz every clip is resampled to.
    n_bands: number of mel-spaced triangular bands (the network's input size).
    fmin, fmax: Hz, lower and upper edge of the lowest and highest band.
    n_fft: samples per analysis frame (512 = 32 ms at 16 kHz), Hann window.
    hop_length: samples between frames (160 = 10 ms at 16 kHz).
    noise_percentile: each band's steady background is its power at this percentile over the
        clip's frames, subtracted before the average (0 turns it off).
    top_db: frames more than this many dB below the loudest frame are left out of the average.
    band_floor_db: in each frame, bands more than this many dB below the frame's loudest band
        are raised to that floor, so near-empty bands (codec cut-offs, noise) weigh little.
    sound_db: frames within this many dB of the loudest are sound, quiet consonants included;
        the span from the first to the last of them must last ``min_speech_s``.
    min_speech_s: seconds of sound a clip needs to be usable.
    band_spread: percentiles of each band's level over the averaged frames, kept after the
        ``n_bands`` means as ``n_bands`` more numbers each (``pipeline.features``): how a voice's
        spectrum moves while it speaks, which the open set measures beside the histogram (the
        network reads the histogram alone). Empty: the histogram alone, as in bundles made
        before it; training uses ``BAND_SPREAD``.
    cepstra: how many cepstra of each averaged frame's spectral shape (its DCT over the bands,
        the first left out) are correlated with one another over the frames; the
        ``cepstra * (cepstra - 1) / 2`` correlations follow the band spread (``pipeline.features``):
        how a voice's formants move together, which the open set measures too. 0: none, as in
        bundles made before them; training uses ``CEPSTRA``.
    cepstral_floor_db: before the cepstra, bands more than this many dB below the frame's loudest
        are raised to that floor, so a codec's spectral holes weigh little.
    cepstral_frames: the cepstra are correlated over at most this many averaged frames, the
        middle ones: a voice's references are short clips, and correlations over many more
        frames than theirs are more exact and lie nearer every voice's, a stranger's too.
    """

    sample_rate: int = DEFAULT_SAMPLE_RATE
    n_bands: int = 60
    fmin: float = 50.0
    fmax: float = 3800.0
    n_fft: int = 512
    hop_length: int = 160
    noise_percentile: float = 10.0
    top_db: float = 20.0
    band_floor_db: float = 40.0
    sound_db: float = 40.0
    min_speech_s: float = 0.1
    band_spread: tuple[float, ...] = ()
    cepstra: int = 0
    cepstral_floor_db: float = 30.0
    cepstral_frames: int = 100

    def __post_init__(self) -> None:
        _positive_ints(self, ("sample_rate", "n_bands", "n_fft", "hop_length", "cepstral_frames"))
        self._check_frames()
        spread = self.band_spread
        if not isinstance(spread, tuple) or not all(
            isinstance(q, int | float) and not isinstance(q, bool) and 0 < q < 100 for q in spread
        ):
            raise ParameterError(
                f"band_spread={spread!r} must be a tuple of percentiles, each between 0 and 100"
            )
        cepstra = self.cepstra
        if not (isinstance(cepstra, int) and not isinstance(cepstra, bool)) or not (
            cepstra == 0 or 2 <= cepstra < self.n_bands
        ):
            raise ParameterError(
                f"cepstra={cepstra!r} must be 0 (none) or a whole number from 2 to "
                f"n_bands - 1 = {self.n_bands - 1}"
            )
        for name in ("fmax", "top_db", "band_floor_db", "sound_db", "min_speech_s",
                     "cepstral_floor_db"):  # fmt: skip
            _positive(name, getattr(self, name))
        if not (isinstance(self.noise_percentile, int | float) and 0 <= self.noise_percentile < 50):
            raise ParameterError(
                f"noise_percentile={self.noise_percentile!r} must be >= 0 and below 50"
            )
        if not (isinstance(self.fmin, int | float) and 0 <= self.fmin < self.fmax):
            raise ParameterError(f"fmin={self.fmin!r} must be >= 0 and below fmax={self.fmax!r}")
        if self.fmax > self.sample_rate / 2:
            raise ParameterError(
                f"fmax={self.fmax!r} must not exceed the Nyquist frequency "
                f"{self.sample_rate / 2} Hz"
            )

    def _check_frames(self) -> None:
        """The rate, frame and hop within their sane ranges (``SAMPLE_RATES``, ``N_FFT_RANGE``;
        a hop of at most a frame, so no sample goes unanalysed)."""
        for name, (low, high), unit in (("sample_rate", SAMPLE_RATES, "Hz"),
                                        ("n_fft", N_FFT_RANGE, "samples")):  # fmt: skip
            if not low <= getattr(self, name) <= high:
                raise ParameterError(
                    f"{name}={getattr(self, name)!r} must be from {low} to {high} {unit}"
                )
        if self.hop_length > self.n_fft:
            raise ParameterError(
                f"hop_length={self.hop_length!r} must be at most n_fft={self.n_fft!r} samples"
            )

    @property
    def row_width(self) -> int:
        """Numbers in a feature row: the ``n_bands`` means, then ``n_bands`` for each of the
        ``band_spread`` percentiles, then the :attr:`cepstral_columns`."""
        return self.n_bands * (1 + len(self.band_spread)) + self.cepstral_columns

    @property
    def cepstral_columns(self) -> int:
        """Numbers of cepstral correlations at the end of a row: one for each pair of cepstra."""
        return self.cepstra * (self.cepstra - 1) // 2

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON has it (the band spread a list), as bundles and caches record it."""
        return dataclasses.asdict(self) | {"band_spread": list(self.band_spread)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown feature config keys: {', '.join(unknown)}")
        spread = data.get("band_spread", ())
        if isinstance(spread, list):  # JSON has no tuples
            data = data | {"band_spread": tuple(spread)}
        return cls(**data)


CLASSIC_HIDDEN = 6  # hidden units of the classic 60-6-N network, kept up to this many speakers
HIDDEN_PER_SPEAKER = 1.5  # past CLASSIC_HIDDEN speakers; `python -m bench.capacity` measures it
MAX_HIDDEN = 1024  # widest hidden layer accepted, and the most the rule chooses


def hidden_units(n_speakers: int) -> int:
    """The hidden width training chooses for ``n_speakers`` when none is pinned: the classic
    width up to as many speakers, then ``HIDDEN_PER_SPEAKER`` units a speaker, rounded up
    (``hidden_units(6) == 6``, ``hidden_units(7) == 11``, ``hidden_units(16) == 24``)."""
    if n_speakers <= CLASSIC_HIDDEN:
        return CLASSIC_HIDDEN
    return min(math.ceil(HIDDEN_PER_SPEAKER * n_speakers), MAX_HIDDEN)


def _check_hidden(hidden: object) -> None:
    if hidden is None:
        return
    if not isinstance(hidden, int) or isinstance(hidden, bool) or not 1 <= hidden <= MAX_HIDDEN:
        raise ParameterError(
            f"hidden={hidden!r} must be a whole number from 1 to {MAX_HIDDEN}; leave it out "
            "(None) to choose the width from the speaker count"
        )


Loss = Literal["crossentropy", "mse"]
Device = Literal["auto", "cpu", "gpu"]


# Each band's 80th and 20th percentile over the averaged frames, beside its mean. Measured on the
# 15 leave-2-speakers-out models of bench/openset.py (seed 0, the nearest training clip of the top
# voice, threshold at 5 % of the known clean clips): strangers let in 0.083 -> 0.060; of nine
# choices (90/10, 70/30, one percentile alone, weights 0.5 and 1.5, the standard deviation) the
# best. docs/benchmarks.md has the table.
BAND_SPREAD: tuple[float, ...] = (80.0, 20.0)
# The correlations of cepstra 1-12 over the speech frames (66 numbers), floored 30 dB under each
# frame's loudest band. Emulated on the seed-0 to seed-2 bench.robustness models and the 15
# leave-2-speakers-out models of bench/openset.py (seed 0), beside the band spread at weight 0.7
# (TrainConfig.open_set_cepstral_weight), each column standardised: at the same strangers let in
# (0.086 against 0.087), the format variants refused 0.059 against 0.066 and clean takes 0.033
# against 0.040. With a 40 dB floor an MP3's holes spoil them (MP3 at 16 kbit/s refused 0.135
# against 0.118); cepstra 1-8 did no better. docs/benchmarks.md has the table.
CEPSTRA = 12


def derived_feature_config(lowest_source_rate: int | None, fmax: float | None) -> FeatureConfig:
    """The feature config training uses for data whose lowest original rate is
    ``lowest_source_rate``: each band's ``BAND_SPREAD`` beside its mean and the correlations of
    ``CEPSTRA`` cepstra after them, and ``fmax`` when given;
    else derived from the rate (``default_fmax``); else, when no file's rate could be read, the
    default.
    """
    if fmax is None and lowest_source_rate:
        fmax = default_fmax(lowest_source_rate)
    if fmax is None:
        return FeatureConfig(band_spread=BAND_SPREAD, cepstra=CEPSTRA)
    return FeatureConfig(fmax=fmax, band_spread=BAND_SPREAD, cepstra=CEPSTRA)


@dataclass(frozen=True)
class TrainConfig:
    """How the 60-6-N network is trained. Each field's help text (see :func:`option`) is what
    ``voiceid train --help`` and ``bench/accuracy.py`` show for it."""

    hidden: int | None = option(
        None,
        f"hidden sigmoid units (default: chosen from the speaker count: {CLASSIC_HIDDEN}, the "
        f"classic network, for up to {CLASSIC_HIDDEN} speakers, then {HIDDEN_PER_SPEAKER:g} a "
        "speaker rounded up)",
    )
    loss: Loss = option(
        "crossentropy",
        "crossentropy: softmax outputs; mse: sigmoid outputs with one-hot targets, the original "
        "60-6-2 recipe",
    )
    learning_rate: float = option(0.05, "Adam's learning rate")
    batch_size: int = option(512, "training rows per update")
    max_epochs: int = option(400, "most epochs to train", flag="--epochs")
    patience: int = option(
        30, "epochs without a validation improvement of the best candidate before training stops"
    )
    candidates: int = option(
        6,
        "networks trained side by side from different initial weights; the one with the lowest "
        "validation loss is kept (a 6-unit layer is easily trapped, so this makes training "
        "robust by design rather than by a lucky seed)",
    )
    val_fraction: float = option(0.2, "share of each speaker's clips held out for validation")
    seed: int = option(0, "seed of the split, the initial weights, the batches and the copies")
    class_weights: bool = option(
        True,
        "weight the loss by the inverse of each speaker's count",
        off="let every clip weigh the same in the loss, however many clips its speaker has",
    )
    device: Device = option("auto", "where TensorFlow trains; auto: a GPU when it sees one")
    unknown_quantile: float = option(
        0.0375,
        "share of the training clips the open-set distance threshold rejects by leave-one-out "
        "(pipeline.openset)",
    )
    matched_quantile: float = option(
        0.15,
        "share of the degraded copies each condition-matched open-set threshold rejects by "
        "leave-one-recording-out (pipeline.openset)",
    )
    open_set_hidden_weight: float = option(
        6.0,
        "weight of the network's hidden activations beside the standardised histogram in the "
        "open set's distances (pipeline.openset; 0: the histogram alone)",
    )
    open_set_spread_weight: float = option(
        1.0,
        "weight of each band's spread over the frames (FeatureConfig.band_spread), standardised, "
        "beside the histogram in the open set's distances (pipeline.openset; 0: left out)",
    )
    open_set_cepstral_weight: float = option(
        0.7,
        "weight of the correlations of each frame's cepstra (FeatureConfig.cepstra), each "
        "standardised, beside the histogram in the open set's distances (pipeline.openset; 0: "
        "left out)",
    )
    open_set_noise_allowance: float = option(
        0.7,
        "how far a clip may move at no cost in the open set's clean distances along the mean "
        "shift noise gives the training clips (their noisy copies), in units of that shift "
        "(pipeline.openset; 0: not at all)",
    )
    l2: float = option(
        1e-3,
        "weight decay on both kernels; it keeps scores from saturating at 1.0 on easy data, "
        "which the unknown-speaker threshold needs",
    )
    augment: bool = option(
        True,
        "also train on degraded copies of each training clip (pipeline.augment): the recording "
        "conditions users meet (level, overdrive, noise, phone lines, rooms, codecs)",
        off="train on the clips as recorded only, without degraded copies",
    )
    augment_copies: int = option(
        4,
        "degraded copies of each training clip, each under a condition drawn from the seed, the "
        "copy number and the clip's content",
    )

    crops: int = option(
        2,
        "random parts (60 to 90 percent) of each training clip's speech added as training rows, "
        "so a voice is learnt from a part of a word too (0: none; a feature table holds none)",
    )

    @property
    def copies_per_clip(self) -> int:
        """Rows of each training clip besides its own: degraded copies first, then crops."""
        return (self.augment_copies if self.augment else 0) + self.crops

    def hidden_for(self, n_speakers: int) -> int:
        """The hidden width of a network for ``n_speakers``: ``hidden`` when pinned, else the
        rule's (:func:`hidden_units`)."""
        return self.hidden if self.hidden is not None else hidden_units(n_speakers)

    def __post_init__(self) -> None:
        _positive_ints(self, ("batch_size", "max_epochs", "patience"))
        check_copies("augment_copies", self.augment_copies, low=1)
        _whole_number("candidates", self.candidates, 1, MAX_CANDIDATES)
        _check_hidden(self.hidden)
        if not isinstance(self.crops, int) or isinstance(self.crops, bool) or self.crops < 0:
            raise ParameterError(f"crops={self.crops!r} must be an integer >= 0")
        _positive("learning_rate", self.learning_rate)
        for name in ("l2", "open_set_hidden_weight", "open_set_spread_weight",
                     "open_set_cepstral_weight", "open_set_noise_allowance"):  # fmt: skip
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ParameterError(f"{name}={getattr(self, name)!r} must be >= 0")
        for name in ("open_set_hidden_weight", "open_set_spread_weight",
                     "open_set_cepstral_weight"):  # fmt: skip
            if getattr(self, name) > MAX_OPEN_SET_WEIGHT:
                raise ParameterError(
                    f"{name}={getattr(self, name)!r} must be at most {MAX_OPEN_SET_WEIGHT:g}"
                )
        if not 0 < self.val_fraction < 1:
            raise ParameterError(f"val_fraction={self.val_fraction!r} must be between 0 and 1")
        for name in ("unknown_quantile", "matched_quantile"):
            if not 0 <= getattr(self, name) < 1:
                raise ParameterError(f"{name}={getattr(self, name)!r} must be in [0, 1)")
        for name, kind in (("loss", Loss), ("device", Device)):
            choices = get_args(kind)
            if getattr(self, name) not in choices:
                shown = ", ".join(map(repr, choices[:-1])) + f" or {choices[-1]!r}"
                raise ParameterError(f"{name}={getattr(self, name)!r} must be {shown}")
        check_seed("seed", self.seed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
