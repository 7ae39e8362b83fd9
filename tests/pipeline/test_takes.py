"""Tests of the check of a voice's takes: too far apart, or all from one sitting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.openset import FEW_TAKES_CAP_WITHOUT_CEPSTRA as CAP
from pipeline.quality.measures import Quality
from pipeline.takes import (
    SITTING_S,
    SPREAD_SHARE,
    TakesCheck,
    check_takes,
    one_sitting,
    spread_limit,
)

D = 4  # bands of the rows below: the spread limit is SPREAD_SHARE * CAP * 2
LIMIT = SPREAD_SHARE * CAP * 2.0


def quality(level: float = -20.0, snr: float = 30.0, bandwidth: float = 3800.0) -> Quality:
    return Quality(speech_s=1.0, level_dbfs=level, clipped_fraction=0.0, snr_db=snr,
                   bandwidth_hz=bandwidth, available_hz=4000.0, low_band_db=0.0,
                   background_low_band_db=-10.0, fall_db=30.0)  # fmt: skip


def line(gap: float, n: int = 4) -> np.ndarray:
    """``n`` takes on a line, ``gap`` apart: each one's nearest other take is ``gap`` away."""
    rows = np.zeros((n, D))
    rows[:, 0] = gap * np.arange(n)
    return rows


SAME = [quality()] * 4
HOURS_APART = np.array([0.0, 3600.0, 7200.0, 10800.0])
MINUTES_APART = np.array([0.0, 60.0, 120.0, 180.0])


def test_the_spread_limit_is_a_share_of_the_distance_other_voices_lie_at() -> None:
    assert spread_limit(D) == pytest.approx(LIMIT)
    assert spread_limit(60) == pytest.approx(SPREAD_SHARE * CAP * math.sqrt(60))


def test_takes_farther_apart_than_the_limit_are_inconsistent() -> None:
    close = check_takes(line(0.9 * LIMIT), SAME, HOURS_APART)
    far = check_takes(line(1.1 * LIMIT), SAME, HOURS_APART)

    assert (close.takes, close.minutes, close.inconsistent, close.one_sitting) == (
        4, 180.0, False, False
    )  # fmt: skip
    assert close.spread == pytest.approx(0.9 * LIMIT) and close.spread_limit == pytest.approx(LIMIT)
    assert far.inconsistent and far.spread == pytest.approx(1.1 * LIMIT)


def test_takes_within_minutes_in_the_same_conditions_are_one_sitting() -> None:
    assert check_takes(line(1.0), SAME, MINUTES_APART).one_sitting
    louder = quality(level=-10.0, snr=40.0)  # 10 dB louder over the same background
    assert one_sitting([*SAME[:3], louder], MINUTES_APART)
    assert one_sitting(SAME, np.array([0.0, 0.0, 0.0, SITTING_S]))
    assert not one_sitting(SAME, np.array([0.0, 0.0, 0.0, SITTING_S + 1]))


@pytest.mark.parametrize(
    "other",
    [quality(level=-31.0, snr=19.0), quality(snr=23.0), quality(bandwidth=3000.0)],
    ids=["level 11 dB apart", "background 7 dB apart", "bandwidth 800 Hz apart"],
)
def test_takes_in_other_conditions_are_not_one_sitting(other: Quality) -> None:
    assert not one_sitting([*SAME[:3], other], MINUTES_APART)


def test_too_few_takes_are_not_judged() -> None:
    check = check_takes(line(10 * LIMIT, n=2), SAME[:2], np.zeros(2))

    assert check == TakesCheck(2, None, spread_limit(D), 0.0, inconsistent=False,
                               one_sitting=False)  # fmt: skip
