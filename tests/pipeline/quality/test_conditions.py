"""Which recording condition a clip resembles, from its measures, and what a refusal may blame."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pipeline.augment import CONDITIONS
from pipeline.quality.conditions import (
    BAND_SIGN_SHARE,
    CLIPPED_SIGN,
    MATCHED,
    MATCHED_BY_AUGMENT,
    NOISY_SIGN_DB,
    REVERB_BLAME_DB,
    REVERB_FALL_DB,
    causes,
    resembles,
    signs,
)
from pipeline.quality.issues import LOW_BAND_CUT_DB, LOW_BAND_ISSUE_DB, MIN_LOW_BAND_DB, issues
from pipeline.quality.measures import CODE_LEVELS, Quality

CLEAN = Quality(speech_s=1.0, level_dbfs=-20.0, clipped_fraction=0.0, snr_db=35.0,
                bandwidth_hz=3900.0, available_hz=4000.0, low_band_db=-6.0,
                background_low_band_db=-10.0, fall_db=30.0)  # fmt: skip


def _with(**change: Any) -> Quality:
    return dataclasses.replace(CLEAN, **change)


def test_a_clean_recording_shows_no_sign_and_resembles_a_clean_one() -> None:
    assert signs(CLEAN, band_hz=3800.0) == ()
    assert resembles(signs(CLEAN, band_hz=3800.0)) == "clean"


@pytest.mark.parametrize(
    ("change", "condition", "measure", "limit"),
    [
        ({"clipped_fraction": 0.005}, "clipped", "clipped_fraction", CLIPPED_SIGN),
        ({"low_band_db": -25.0}, "band-limited", "low_band_db", LOW_BAND_CUT_DB + 10.0),
        ({"bandwidth_hz": 3000.0}, "band-limited", "bandwidth_hz", BAND_SIGN_SHARE * 3800.0),
        ({"snr_db": 6.0, "bandwidth_hz": 4000.0}, "noisy", "snr_db", NOISY_SIGN_DB),
        ({"fall_db": 9.0}, "reverberant", "fall_db", REVERB_FALL_DB),
    ],
)
def test_each_sign_points_to_its_condition(
    change: dict[str, float], condition: str, measure: str, limit: float
) -> None:
    (found,) = signs(_with(**change), band_hz=3800.0)

    assert found[0] == condition
    assert (found[1].measure, found[1].value, found[1].limit) == (measure, change[measure], limit)
    assert resembles([found]) == condition


def test_a_low_snr_is_noise_only_when_the_background_fills_the_band() -> None:
    # A short take's background is hard to tell from its quiet speech; a steady noise fills the
    # whole band the recording has.
    assert signs(_with(snr_db=6.0, bandwidth_hz=3500.0), band_hz=3800.0) == ()


def test_the_band_is_judged_against_the_band_the_recording_has() -> None:
    # An 8 kHz recording holds nothing above 4 kHz: for a model listening up to 7.6 kHz it is
    # not band-limited for that.
    eight_khz = _with(bandwidth_hz=3700.0, available_hz=4000.0)

    assert signs(eight_khz, band_hz=7600.0) == ()
    assert resembles(signs(_with(bandwidth_hz=3300.0), band_hz=7600.0)) == "band-limited"


def test_the_most_telling_sign_comes_first() -> None:
    found = signs(_with(clipped_fraction=0.05, low_band_db=-25.0), band_hz=3800.0)

    assert [condition for condition, _ in found] == ["clipped", "band-limited"]
    assert resembles(found) == "clipped"


def _blamed(q: Quality) -> list[str]:
    seen = [sign for _, sign in signs(q, 3800.0)]
    return [issue.measure for issue in causes(issues(q, 3800.0), seen)]


def test_a_refusal_blames_issues_then_clipping_and_band_signs_but_never_a_noisy_sign() -> None:
    noisy = _with(snr_db=6.0, bandwidth_hz=4000.0)
    narrow = _with(bandwidth_hz=3000.0)
    very_noisy = _with(snr_db=-3.0, bandwidth_hz=4000.0)

    assert _blamed(noisy) == []
    assert _blamed(narrow) == ["bandwidth_hz", "bandwidth_hz"]  # the issue, then the sign
    assert _blamed(very_noisy) == ["snr_db"]  # the issue alone


def test_a_low_band_cut_is_blamed_only_as_deep_as_the_issue_and_then_once() -> None:
    # Background -10 dB: a voice under -20 dB is a sign (both together under -30), one under
    # -25 dB the issue (together under -35), which clean takes of a few voices fall short of.
    mild, deep = _with(low_band_db=-22.0), _with(low_band_db=-27.0)

    assert resembles(signs(mild, 3800.0)) == resembles(signs(deep, 3800.0)) == "band-limited"
    assert _blamed(mild) == []
    assert _blamed(deep) == ["low_band_db"]
    assert issues(deep, 3800.0)[0].limit == LOW_BAND_ISSUE_DB + 10.0


def test_a_telephone_code_shows_the_voices_low_band_cut_whatever_its_background() -> None:
    # The code's noise fills the background's low band: the voice's own tells.
    coded = _with(companded_levels=231, low_band_db=-15.0, background_low_band_db=-1.0)
    (found,) = signs(coded, 3800.0)

    assert (found[0], found[1].measure, found[1].limit) == ("band-limited", "low_band_db",
                                                            MIN_LOW_BAND_DB)  # fmt: skip
    assert _blamed(coded) == ["low_band_db"]  # the issue: a low band sign is never blamed
    assert signs(_with(low_band_db=-15.0, background_low_band_db=-1.0), 3800.0) == ()


@pytest.mark.parametrize(
    ("snr_db", "words"), [(6.0, "speech 6 dB above it"), (-9.44, "speech 9 dB below it")]
)
def test_the_noisy_sign_words_where_the_speech_stands(snr_db: float, words: str) -> None:
    ((_, found), *_) = signs(_with(snr_db=snr_db, bandwidth_hz=4000.0), 3800.0)

    assert found.problem == f"background noise fills the recording ({words})"


def test_a_telephone_code_alone_is_a_blamed_sign_of_a_band_limit() -> None:
    (found,) = signs(_with(companded_levels=187), 3800.0)

    assert found[0] == "band-limited"
    assert (found[1].measure, found[1].value, found[1].limit) == ("companded_levels", 187,
                                                                  CODE_LEVELS)  # fmt: skip
    assert found[1].problem == (
        "the recording's samples take only 187 levels, in a telephone line's code"
    )
    assert _blamed(_with(companded_levels=187)) == ["companded_levels"]


def test_slow_falls_are_an_echo_only_in_a_quiet_recording() -> None:
    # Noise holds every fall back too: there, slow falls say nothing of the room.
    assert signs(_with(fall_db=9.0, snr_db=15.0), band_hz=3800.0) == ()
    # No fall measured (no frame far enough above its background) is no sign.
    assert signs(_with(fall_db=0.0), band_hz=3800.0) == ()


def test_a_slow_fall_is_blamed_only_well_under_the_signs_limit() -> None:
    # Slow word endings of clean takes reach REVERB_BLAME_DB to REVERB_FALL_DB: the clip is
    # compared with echoing references, and a refusal says "far", not "poor recording".
    slow = _with(fall_db=(REVERB_BLAME_DB + REVERB_FALL_DB) / 2)

    assert resembles(signs(slow, 3800.0)) == "reverberant"
    assert _blamed(slow) == []
    assert _blamed(_with(fall_db=REVERB_BLAME_DB - 0.5)) == ["fall_db"]


def test_an_echo_comes_after_every_other_sign_and_is_blamed() -> None:
    echoing = _with(fall_db=9.0, clipped_fraction=0.005)
    found = signs(echoing, band_hz=3800.0)

    assert [condition for condition, _ in found] == ["clipped", "reverberant"]
    assert [issue.measure for issue in causes((), [s for _, s in found])] == [
        "clipped_fraction",
        "fall_db",
    ]
    assert found[1][1].problem == "the room echoes (the speech never falls 9 dB within 60 ms)"


def test_every_matched_condition_comes_from_conditions_training_makes_copies_under() -> None:
    assert set(MATCHED_BY_AUGMENT) <= set(CONDITIONS)
    assert set(MATCHED_BY_AUGMENT.values()) == set(MATCHED)
