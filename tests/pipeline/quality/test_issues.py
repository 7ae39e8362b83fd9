"""Which recordings have issues, and the words for them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pipeline.quality.issues import (
    BAND_SHARE,
    LOW_BAND_ISSUE_DB,
    MAX_CLIPPED_FRACTION,
    MIN_NOISE_SPAN_S,
    MIN_SNR_DB,
    MIN_SPEECH_S,
    SPEECH_BAND_HZ,
    issues,
    low_band_cut,
)
from pipeline.quality.measures import Quality

CLEAN = Quality(speech_s=1.0, level_dbfs=-20.0, clipped_fraction=0.0, snr_db=35.0,
                bandwidth_hz=7000.0, available_hz=8000.0, low_band_db=-6.0,
                background_low_band_db=-10.0, fall_db=30.0)  # fmt: skip


def test_a_clean_recording_has_no_issue() -> None:
    assert issues(CLEAN, band_hz=7600.0) == ()


@pytest.mark.parametrize(
    ("change", "measure", "limit"),
    [
        ({"speech_s": 0.1}, "speech_s", MIN_SPEECH_S),
        ({"clipped_fraction": 0.05}, "clipped_fraction", MAX_CLIPPED_FRACTION),
        ({"snr_db": -3.0}, "snr_db", MIN_SNR_DB),
        ({"low_band_db": -27.0}, "low_band_db", LOW_BAND_ISSUE_DB + 10.0),  # background: -10 dB
        ({"bandwidth_hz": 2400.0}, "bandwidth_hz", BAND_SHARE * SPEECH_BAND_HZ),
        ({"level_dbfs": -70.0}, "level_dbfs", -60.0),
    ],
)
def test_each_measure_past_its_limit_is_one_issue(
    change: dict[str, Any], measure: str, limit: float
) -> None:
    [issue] = issues(dataclasses.replace(CLEAN, **change), band_hz=7600.0)

    assert (issue.measure, issue.value, issue.limit) == (
        measure,
        next(iter(change.values())),
        limit,
    )


def test_the_words_name_the_value_and_what_would_help() -> None:
    [issue] = issues(dataclasses.replace(CLEAN, clipped_fraction=0.034), band_hz=7600.0)

    assert issue.problem == "the recording is clipped (3.4 % of samples at the peak)"
    assert issue.advice == "lower the microphone gain or move back from the microphone"


@pytest.mark.parametrize(
    ("bandwidth_hz", "problem", "advice"),
    [
        (1800.0, "the recording carries sound only up to 1800 Hz",
         "record directly with a microphone, not through a phone call or a compressed file"),
        (297.0, "the recording carries sound only up to 297 Hz, far less than a voice",
         "speak into an uncovered microphone: this sounds muffled, or holds no speech"),
    ],
)  # fmt: skip
def test_a_band_narrower_than_any_line_s_is_not_blamed_on_a_line(
    bandwidth_hz: float, problem: str, advice: str
) -> None:
    """Over a telephone line a voice keeps its formants to 3 kHz: sound that stops under 1 kHz
    (a tone, a hum, a voice through cloth) is no phone call's."""
    [issue] = issues(dataclasses.replace(CLEAN, bandwidth_hz=bandwidth_hz), band_hz=7600.0)

    assert (issue.measure, issue.problem, issue.advice) == ("bandwidth_hz", problem, advice)


@pytest.mark.parametrize(
    ("snr_db", "words"),
    [(-37.08, "speech 37 dB below it"), (-0.3, "speech no louder than it")],
)
def test_noise_louder_than_the_speech_is_worded_below_not_a_negative_above(
    snr_db: float, words: str
) -> None:
    [issue] = issues(dataclasses.replace(CLEAN, snr_db=snr_db), band_hz=7600.0)

    assert issue.problem == f"too much background noise ({words})"


def test_an_8_khz_recording_is_judged_on_its_own_band_not_on_the_models() -> None:
    narrow = dataclasses.replace(CLEAN, bandwidth_hz=3300.0, available_hz=4000.0)
    muffled = dataclasses.replace(narrow, bandwidth_hz=3000.0)

    assert issues(narrow, band_hz=7600.0) == ()
    assert issues(muffled, band_hz=2000.0) == ()  # the model hears no more than 2 kHz
    assert [i.measure for i in issues(muffled, band_hz=7600.0)] == ["bandwidth_hz"]


def test_issues_come_most_telling_first() -> None:
    bad = dataclasses.replace(CLEAN, clipped_fraction=0.2, snr_db=-2.0, level_dbfs=-70.0)
    short = dataclasses.replace(bad, speech_s=0.1)

    assert [i.measure for i in issues(bad, band_hz=7600.0)] == [
        "clipped_fraction",
        "level_dbfs",
        "snr_db",
    ]
    assert [i.measure for i in issues(short, band_hz=7600.0)][:2] == [
        "speech_s",
        "clipped_fraction",
    ]


def test_speech_too_quiet_for_the_converter_is_blamed_before_its_noise() -> None:
    """A clip at -89 dBFS measures the converter's own noise as its background: "record somewhere
    quieter" would not help, raising the gain would."""
    faint = dataclasses.replace(CLEAN, snr_db=-3.8, level_dbfs=-88.6)

    first = issues(faint, band_hz=7600.0)[0]

    assert (first.problem, first.advice) == (
        "the speech is very quiet (-89 dBFS)",
        "speak closer to the microphone or raise its gain",
    )


@pytest.mark.parametrize(
    ("background_low_band_db", "problem", "advice"),
    [
        (19.9, "too much background noise (speech 9 dB below it)",
         "record somewhere quieter, or closer to the microphone"),
        (20.0, "a low hum or rumble covers the voice (speech 9 dB below it)",
         "keep the microphone and its cable away from power adapters, fans and engines, or "
         "record somewhere quieter"),
    ],
)  # fmt: skip
def test_noise_mostly_under_250_hz_is_named_a_hum_or_rumble(
    background_low_band_db: float, problem: str, advice: str
) -> None:
    """A mains hum under speech leaves a background 46-54 dB stronger under 250 Hz than above."""
    hum = dataclasses.replace(CLEAN, snr_db=-9.0, background_low_band_db=background_low_band_db)

    [issue] = issues(hum, band_hz=7600.0)

    assert (issue.measure, issue.problem, issue.advice) == ("snr_db", problem, advice)


@pytest.mark.parametrize(("speech_s", "noisy"), [(0.3, False), (0.49, False), (0.5, True)])
def test_noise_is_judged_only_over_half_a_second_of_speech(speech_s: float, noisy: bool) -> None:
    """Under half a second, the background percentile is the quietest part of the voice."""
    clip = dataclasses.replace(CLEAN, speech_s=speech_s, snr_db=-4.0)

    assert ("snr_db" in [i.measure for i in issues(clip, band_hz=7600.0)]) is noisy
    assert MIN_NOISE_SPAN_S == 0.5


@pytest.mark.parametrize(
    ("low_band_db", "background_low_band_db", "cut", "issue"),
    [
        (-25.0, -10.0, True, False),  # the voice's low band cut, the room's not kept: a line ...
        (-26.0, -10.0, True, True),  # ... cut deeper than clean takes of a few voices are
        (-25.0, -3.0, False, False),  # the room keeps its low rumble: little voice below 250 Hz
        (-15.0, -25.0, True, True),  # a shallower cut of the voice, the room's cut as well
        (-15.0, -10.0, False, False),  # a shallow dip of the voice alone
        (-10.0, -30.0, False, False),  # a background without a low band, the voice's kept
    ],
)
def test_the_low_band_is_cut_only_where_the_background_shows_it_too(
    low_band_db: float, background_low_band_db: float, cut: bool, issue: bool
) -> None:
    clip = dataclasses.replace(
        CLEAN, low_band_db=low_band_db, background_low_band_db=background_low_band_db
    )

    assert low_band_cut(clip) is cut
    assert low_band_cut(clip, LOW_BAND_ISSUE_DB) is issue
    assert [i.measure for i in issues(clip, band_hz=7600.0)] == (["low_band_db"] if issue else [])
