"""Which recording condition a clip resembles, from its quality measures alone.

The open set (``pipeline.openset``) compares a clip with a speaker's references made under the
condition the clip resembles: a clean clip with the clean training clips, a clip that sounds like
a phone line with the training clips' band-limited copies as well. What a clip resembles is told
by *signs*: measures past limits milder than those of ``pipeline.quality.issues`` (where a
recording leaves what the model was trained on). Every sign is a measure of the recording against
itself and against the band it really has, never of the voice, so that a voice the model has
never heard is judged like a known one:

- ``clipped``: more than ``CLIPPED_SIGN`` of the samples sit flat on the peak;
- ``band-limited``: the channel cut the voice's low band (``pipeline.quality.issues.low_band_cut``:
  the voice's low band under its mid band, and the background's not kept, or in a telephone
  code the voice's alone), or the bandwidth reaches less than ``BAND_SIGN_SHARE`` of the speech
  band the recording has (an 8 kHz recording is judged against 4 kHz, not against 8), or the
  samples are in a telephone line's code (``companded_levels``);
- ``noisy``: the speech stands less than ``NOISY_SIGN_DB`` above a background that fills the whole
  band the recording has (within ``FULL_BAND_HZ`` of its top);
- ``reverberant``: the speech stands ``REVERB_SNR_DB`` or more above its background, yet its
  energy never falls by ``REVERB_FALL_DB`` within 60 ms (``fall_db``): in a quiet recording a
  voice's stops fall further than that, and only a room's echo, dying away no faster than its
  reverberation time allows, holds every fall back. It comes last, so it never changes the
  condition a clip with another sign resembles.

A refused clip with a sign of clipping, of a narrow band, of a telephone code or of reverberation
is refused as a poor recording, the sign its cause (``blames``); slow falls only under
``REVERB_BLAME_DB``, since the slow word endings of clean takes reach 13-14 dB. A cut low band is
blamed only as the issue (``pipeline.quality.issues.LOW_BAND_ISSUE_DB``), deeper than the sign:
clean takes of a few voices are cut as far as the sign's limit. A noisy sign is never blamed:
the background of a short, trimmed take is hard to measure, and clean takes of voices a model
has never heard show it as often as noise-covered ones of known voices are refused; only the
noise issue (``pipeline.quality.issues``) is.

``MATCHED_BY_AUGMENT`` says which of the training copies' conditions (``pipeline.augment``) make
references for each condition a clip may resemble.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

from pipeline.quality.issues import (
    ADVICE_BAND,
    ADVICE_CLIPPED,
    ADVICE_NOISY,
    SPEECH_BAND_HZ,
    Issue,
    low_band_cut,
    low_band_limit,
    narrow_band_issue,
    speech_against_background,
)
from pipeline.quality.measures import CODE_LEVELS, Quality

__all__ = [
    "ADVICE_REVERBERANT",
    "BAND_SIGN_SHARE",
    "CLIPPED_SIGN",
    "FULL_BAND_HZ",
    "MATCHED",
    "MATCHED_BY_AUGMENT",
    "NOISY_SIGN_DB",
    "REVERB_BLAME_DB",
    "REVERB_FALL_DB",
    "REVERB_SNR_DB",
    "Matched",
    "blames",
    "causes",
    "resembles",
    "signs",
]

Matched = Literal["clipped", "band-limited", "noisy", "reverberant"]
MATCHED: tuple[Matched, ...] = get_args(Matched)
MATCHED_BY_AUGMENT: dict[str, Matched] = {
    "overdrive": "clipped",
    "noise": "noisy",
    "telephone": "band-limited",
    "codec": "band-limited",
    "dull": "band-limited",
    "reverb": "reverberant",
}

CLIPPED_SIGN = 0.002  # share of samples flat on the peak; clean takes stay below 0.001
BAND_SIGN_SHARE = 0.85  # of the speech band within the model's and the recording's band
NOISY_SIGN_DB = 10.0  # dB of speech above the background
FULL_BAND_HZ = 100.0  # a background this close to the recording's top fills its band
REVERB_SNR_DB = 20.0  # dB of speech above the background, in a recording quiet enough ...
REVERB_FALL_DB = 14.0  # ... for a voice's stops to fall further than this within 60 ms;
REVERB_BLAME_DB = 13.0  # a fall under this is blamed: slow word endings of clean takes reach 13-14

ADVICE_REVERBERANT = "record in a smaller or furnished room, close to the microphone"


def _clipped(q: Quality, band: float) -> Issue | None:
    if q.clipped_fraction <= CLIPPED_SIGN:
        return None
    share = 100 * q.clipped_fraction
    problem = f"the recording sounds clipped ({share:.1f} % of samples at the peak)"
    return Issue("clipped_fraction", q.clipped_fraction, CLIPPED_SIGN, problem, ADVICE_CLIPPED)


def _band_limited(q: Quality, band: float) -> Issue | None:
    if low_band_cut(q):
        problem = "the recording lacks the voice's low tones, as over a telephone line"
        return Issue("low_band_db", q.low_band_db, low_band_limit(q), problem, ADVICE_BAND)
    if q.bandwidth_hz < band:
        return narrow_band_issue(q, band)
    if q.companded_levels:
        problem = (f"the recording's samples take only {q.companded_levels} levels, in a "
                   "telephone line's code")  # fmt: skip
        return Issue("companded_levels", q.companded_levels, CODE_LEVELS, problem, ADVICE_BAND)
    return None


def _noisy(q: Quality, band: float) -> Issue | None:
    if q.snr_db >= NOISY_SIGN_DB or q.bandwidth_hz < q.available_hz - FULL_BAND_HZ:
        return None
    problem = f"background noise fills the recording (speech {speech_against_background(q.snr_db)})"
    return Issue("snr_db", q.snr_db, NOISY_SIGN_DB, problem, ADVICE_NOISY)


def _reverberant(q: Quality, band: float) -> Issue | None:
    if q.snr_db < REVERB_SNR_DB or not 0 < q.fall_db < REVERB_FALL_DB:
        return None
    problem = f"the room echoes (the speech never falls {q.fall_db:.0f} dB within 60 ms)"
    return Issue("fall_db", q.fall_db, REVERB_FALL_DB, problem, ADVICE_REVERBERANT)


_SIGNS: tuple[tuple[Matched, Callable[[Quality, float], Issue | None]], ...] = (
    ("clipped", _clipped),
    ("band-limited", _band_limited),
    ("noisy", _noisy),
    ("reverberant", _reverberant),
)


# Never blamed: a noisy sign (see the module's text), and a low band cut short of the issue's
# limit (``pipeline.quality.issues.LOW_BAND_ISSUE_DB``), which is then named as the issue.
_NEVER_BLAMED = frozenset({"snr_db", "low_band_db"})


def signs(quality: Quality, band_hz: float) -> tuple[tuple[Matched, Issue], ...]:
    """The signs of a degraded recording in a clip of ``quality`` for a model that listens up to
    ``band_hz``, each with the condition it points to, the most telling first (none for a clip
    that resembles a clean recording)."""
    band = BAND_SIGN_SHARE * min(band_hz, quality.available_hz, SPEECH_BAND_HZ)
    found: tuple[tuple[Matched, Issue], ...] = ()
    for condition, check in _SIGNS:
        if (sign := check(quality, band)) is not None:
            found += ((condition, sign),)
    return found


def resembles(found: Sequence[tuple[Matched, Issue]]) -> Matched | Literal["clean"]:
    """The condition a clip with the signs ``found`` (most telling first) resembles."""
    return found[0][0] if found else "clean"


def blames(sign: Issue) -> bool:
    """Whether ``sign`` may be named as the cause of a refusal (see the module's text)."""
    if sign.measure == "fall_db":
        return sign.value < REVERB_BLAME_DB
    return sign.measure not in _NEVER_BLAMED


def causes(found: Sequence[Issue], seen: Sequence[Issue]) -> tuple[Issue, ...]:
    """What a refusal of a clip with the issues ``found`` and the signs ``seen`` may blame on
    its recording, the most telling first: the issues, then the signs it ``blames``."""
    if not seen:  # most clips: no sign, and no generator to run
        return tuple(found)
    return (*found, *(sign for sign in seen if blames(sign)))
