"""What is wrong with a recording, in words a person can act on, from its :class:`Quality`.

Each limit marks where a clip leaves the recordings a model learns from and is calibrated on:
its training clips and their degraded copies (``pipeline.augment``). A clip past one is still
answered; when the answer is "unknown", the issue, not the voice, is the likely cause, and the
advice says what would help. The limits are set so that clean recordings of the datasets in
``bench/`` rarely pass them (``python -m bench.quality`` prints how often each does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal, get_args

from pipeline.quality.measures import Quality

__all__ = [
    "ADVICE_BAND",
    "ADVICE_CLIPPED",
    "ADVICE_HUM",
    "ADVICE_NOISY",
    "BAND_SHARE",
    "CONDITIONS",
    "HUM_BACKGROUND_DB",
    "KEPT_BACKGROUND_LOW_BAND_DB",
    "LOW_BAND_CUT_DB",
    "LOW_BAND_ISSUE_DB",
    "MAX_CLIPPED_FRACTION",
    "MIN_LEVEL_DBFS",
    "MIN_LOW_BAND_DB",
    "MIN_NOISE_SPAN_S",
    "MIN_SNR_DB",
    "MIN_SPEECH_S",
    "SPEECH_BAND_HZ",
    "Condition",
    "Issue",
    "Measure",
    "condition",
    "issues",
    "low_band_cut",
    "low_band_limit",
    "narrow_band_issue",
    "speech_against_background",
]

Measure = Literal[
    "speech_s",
    "clipped_fraction",
    "snr_db",
    "bandwidth_hz",
    "low_band_db",
    "level_dbfs",
    "fall_db",
    "companded_levels",
]

Condition = Literal["clean", "short", "clipped", "band-limited", "noisy", "quiet"]
CONDITIONS: tuple[Condition, ...] = get_args(Condition)
# The recording condition a clip resembles, by its most telling issue (no issue measures
# fall_db: the room's echo is a sign only, ``pipeline.quality.conditions``).
_CONDITION_OF: dict[Measure, Condition] = {
    "speech_s": "short",
    "clipped_fraction": "clipped",
    "bandwidth_hz": "band-limited",
    "low_band_db": "band-limited",
    "companded_levels": "band-limited",
    "snr_db": "noisy",
    "level_dbfs": "quiet",
}

MIN_SPEECH_S = 0.15  # seconds of speech after trimming; single spoken digits last 0.2-0.5 s
MAX_CLIPPED_FRACTION = 0.01  # share of samples flat on the peak
MIN_SNR_DB = 0.0  # dB of speech above the steady background: no more than the noise
# ... judged on at least this many seconds of speech: a background taken as a percentile of
# fewer frames is the quietest part of the voice itself (single words trimmed to the voice read
# 0 dB or less on 8 % of clean FSDD takes, and only 23 % of them with white noise 5 dB under
# them), while noise loud enough to matter keeps every frame within SPEECH_DB of the loudest.
MIN_NOISE_SPAN_S = 0.5
# A background whose power below 250 Hz stands this far over its power from 250 Hz to 1 kHz is a
# hum or a rumble (mains at 50/60 Hz, a fan, an engine): 46-54 dB for a mains hum under speech,
# against -6 for white noise, about 0 for pink noise and 2 for a quiet room.
HUM_BACKGROUND_DB = 20.0
SPEECH_BAND_HZ = 4000.0  # what carries a voice: a wider band is welcome, never required
BAND_SHARE = 0.8  # the bandwidth must reach this share of the speech band the model hears ...
MIN_LOW_BAND_DB = -12.0  # ... and a voice's low band not cut below this (dB vs its mid band),
KEPT_BACKGROUND_LOW_BAND_DB = -6.0  # nor the background's below this,
LOW_BAND_CUT_DB = -30.0  # nor both together below this (a sign, pipeline.quality.conditions),
LOW_BAND_ISSUE_DB = -35.0  # or this (an issue: clean takes of a few voices reach -30 to -35 dB)
MIN_LEVEL_DBFS = -60.0  # quieter speech is close to the converter's own noise
# A voice keeps its formants up to 3 kHz even over a telephone line: a recording whose sound
# stops under this came through no line or codec, but through cloth or a wall, or holds no speech
# (a hum, a tone)
MUFFLED_HZ = 1000.0


@dataclass(frozen=True)
class Issue:
    """One measure past its limit: which, its value, the limit, and what would help."""

    measure: Measure
    value: float
    limit: float
    problem: str
    advice: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


ADVICE_BAND = "record directly with a microphone, not through a phone call or a compressed file"
ADVICE_MUFFLED = "speak into an uncovered microphone: this sounds muffled, or holds no speech"
ADVICE_CLIPPED = "lower the microphone gain or move back from the microphone"
ADVICE_NOISY = "record somewhere quieter, or closer to the microphone"
ADVICE_HUM = (
    "keep the microphone and its cable away from power adapters, fans and engines, or record "
    "somewhere quieter"
)


def _short(q: Quality, band: float) -> Issue | None:
    if q.speech_s >= MIN_SPEECH_S:
        return None
    return Issue("speech_s", q.speech_s, MIN_SPEECH_S, f"only {q.speech_s:.2f} s of speech",
                 "say a whole word or more, at least half a second")  # fmt: skip


def _clipped(q: Quality, band: float) -> Issue | None:
    if q.clipped_fraction <= MAX_CLIPPED_FRACTION:
        return None
    problem = f"the recording is clipped ({100 * q.clipped_fraction:.1f} % of samples at the peak)"
    return Issue("clipped_fraction", q.clipped_fraction, MAX_CLIPPED_FRACTION, problem,
                 ADVICE_CLIPPED)  # fmt: skip


def low_band_limit(q: Quality, together: float = LOW_BAND_CUT_DB) -> float:
    """The dB under which the voice's low band of a clip of ``q`` is cut (see
    :func:`low_band_cut`), given its background's; -inf where the background keeps its own."""
    if q.companded_levels:
        return MIN_LOW_BAND_DB
    if q.background_low_band_db >= KEPT_BACKGROUND_LOW_BAND_DB:
        return -math.inf
    return min(MIN_LOW_BAND_DB, together - q.background_low_band_db)


def low_band_cut(q: Quality, together: float = LOW_BAND_CUT_DB) -> bool:
    """Whether the channel of a clip of ``q`` cut the low band: the voice's lies under its mid
    band and so does the background's, by ``MIN_LOW_BAND_DB`` and
    ``KEPT_BACKGROUND_LOW_BAND_DB`` at least and by ``together`` both together. A line or a
    small loudspeaker cuts whatever it carries, the room's low rumble with the voice; a voice
    with little below 250 Hz leaves the room's low band as it was. A recording in a telephone
    code (``companded_levels``) came over a line, and the code's noise fills the background's low
    band whatever the line cut: there the voice's low band alone tells."""
    return q.low_band_db < low_band_limit(q, together)


def narrow_band_issue(q: Quality, band: float) -> Issue:
    """The issue of a clip of ``q`` whose sound stops under ``band`` Hz: a line's or a codec's
    band, or, under ``MUFFLED_HZ``, muffled sound or none of a voice."""
    problem = f"the recording carries sound only up to {q.bandwidth_hz:.0f} Hz"
    if q.bandwidth_hz < MUFFLED_HZ:
        problem += ", far less than a voice"
        return Issue("bandwidth_hz", q.bandwidth_hz, band, problem, ADVICE_MUFFLED)
    return Issue("bandwidth_hz", q.bandwidth_hz, band, problem, ADVICE_BAND)


def _band_limited(q: Quality, band: float) -> Issue | None:
    if q.bandwidth_hz < band:
        return narrow_band_issue(q, band)
    if low_band_cut(q, LOW_BAND_ISSUE_DB):
        problem = "the recording lacks the voice's low tones, as over a telephone line"
        limit = low_band_limit(q, LOW_BAND_ISSUE_DB)
        return Issue("low_band_db", q.low_band_db, limit, problem, ADVICE_BAND)
    return None


def speech_against_background(snr_db: float) -> str:
    """Where speech ``snr_db`` dB above its background stands, in words: "12 dB above it",
    "no louder than it" or "9 dB below it" (never "-9 dB above it")."""
    shown = round(snr_db)
    if shown > 0:
        return f"{shown} dB above it"
    return f"{-shown} dB below it" if shown < 0 else "no louder than it"


def _noisy(q: Quality, band: float) -> Issue | None:
    if q.snr_db >= MIN_SNR_DB or q.speech_s < MIN_NOISE_SPAN_S:
        return None
    against = speech_against_background(q.snr_db)
    if q.background_low_band_db >= HUM_BACKGROUND_DB:
        problem = f"a low hum or rumble covers the voice (speech {against})"
        return Issue("snr_db", q.snr_db, MIN_SNR_DB, problem, ADVICE_HUM)
    return Issue("snr_db", q.snr_db, MIN_SNR_DB, f"too much background noise (speech {against})",
                 ADVICE_NOISY)  # fmt: skip


def _quiet(q: Quality, band: float) -> Issue | None:
    if q.level_dbfs >= MIN_LEVEL_DBFS:
        return None
    return Issue("level_dbfs", q.level_dbfs, MIN_LEVEL_DBFS,
                 f"the speech is very quiet ({q.level_dbfs:.0f} dBFS)",
                 "speak closer to the microphone or raise its gain")  # fmt: skip


# The most telling first. Speech under MIN_LEVEL_DBFS lies so close to the converter's own noise
# that a low SNR is the converter's too: raising the gain is what helps, not a quieter room.
_CHECKS = (_short, _clipped, _band_limited, _quiet, _noisy)


def issues(quality: Quality, band_hz: float) -> tuple[Issue, ...]:
    """The issues of a clip of ``quality`` for a model that listens up to ``band_hz``, the most
    telling first (an empty tuple for a clean recording). The bandwidth is judged against the
    speech band (``SPEECH_BAND_HZ``) within the band the model listens to and the band the
    recording has: an 8 kHz recording is not band-limited for lacking what lies above 4 kHz."""
    band = BAND_SHARE * min(band_hz, quality.available_hz, SPEECH_BAND_HZ)
    found: tuple[Issue, ...] = ()  # a plain loop: most clips have none, a generator costs more
    for check in _CHECKS:
        if (issue := check(quality, band)) is not None:
            found += (issue,)
    return found


def condition(found: Sequence[Issue]) -> Condition:
    """The recording condition a clip with the issues ``found`` (most telling first) resembles."""
    return _CONDITION_OF[found[0].measure] if found else "clean"
