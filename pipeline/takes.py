"""How a voice's takes hang together before it is taught: too far apart, or all from one sitting.

A voice taught with a dozen takes is judged by how far a fresh clip lies from the nearest of them
(``pipeline.openset``), so the takes are what it learns the voice *is*. Two things go wrong:

- **inconsistent** takes: the median distance from each take to its nearest other take, in the
  model's standardised feature space, is more than ``SPREAD_SHARE`` of the distance at which
  other people's voices lie (``pipeline.openset.few_take_radii``'s cap). Takes that differ from
  one another as much as different voices do (different words, rooms, microphones, or somebody
  else) teach a voice so wide that strangers fall inside it;
- takes **from one sitting**: all stored within ``SITTING_S`` seconds, and with the same recording
  conditions (speech level, background level and bandwidth each within a small span). They teach
  the voice as it sounded then and there, and a take on another day lands farther away.

Both are advice, never a refusal: recording a few more takes later, in the same words, helps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.openset import FEW_TAKES_CAP_WITHOUT_CEPSTRA, leave_one_out_distances
from pipeline.quality.measures import Quality

__all__ = [
    "MIN_TAKES_TO_JUDGE",
    "SITTING_S",
    "SPREAD_SHARE",
    "TakesCheck",
    "check_takes",
    "one_sitting",
    "spread_limit",
]

MIN_TAKES_TO_JUDGE = 3  # fewer takes say nothing about their spread or their sittings
# Takes are inconsistent beyond this share of the distance other voices lie at: a dozen takes of
# one word sit well within it, a dozen takes of ten different words beyond it (bench/enrol.py's
# FSDD rows, measured with the shipped model's standardisation and a retrained one's; with the
# cap at 0.9 sqrt(D), the limit for 60 bands is 4.65, the median gap of each speaker's takes of
# "zero" 3.1-4.3 and of mixed words 6.5-7.8 in a retrained model). The takes are compared in
# the histogram alone, so the cap measured then holds, whatever the open set's view weighs now.
SPREAD_SHARE = 2 / 3
SITTING_S = 600.0  # takes stored within this many seconds may be one sitting ...
SITTING_LEVEL_DB = 10.0  # ... when their speech levels span at most this many dB (a person
# speaks a few dB louder or softer take to take),
SITTING_FLOOR_DB = 6.0  # their background levels (speech level less SNR) at most this many,
SITTING_BANDWIDTH_HZ = 500.0  # and their bandwidths at most this many Hz


@dataclass(frozen=True)
class TakesCheck:
    """What a voice's takes say about how well they will teach it.

    takes: how many were judged;
    spread: median distance from a take to its nearest other take, standardised units (None
        with fewer than ``MIN_TAKES_TO_JUDGE``);
    spread_limit: the spread beyond which takes are inconsistent;
    minutes: from the first take stored to the last;
    inconsistent, one_sitting: see the module's text (False with too few takes to judge).
    """

    takes: int
    spread: float | None
    spread_limit: float
    minutes: float
    inconsistent: bool
    one_sitting: bool


def spread_limit(n_inputs: int) -> float:
    """The spread beyond which takes are inconsistent, for rows of ``n_inputs`` bands."""
    return SPREAD_SHARE * FEW_TAKES_CAP_WITHOUT_CEPSTRA * math.sqrt(n_inputs)


def one_sitting(qualities: Sequence[Quality], stored_at: np.ndarray) -> bool:
    """Whether takes measured as ``qualities``, stored at ``stored_at`` (seconds, any origin),
    were all recorded within ``SITTING_S`` in the same conditions."""
    if len(qualities) < MIN_TAKES_TO_JUDGE:
        return False

    def span(values: Sequence[float] | np.ndarray) -> float:
        return float(np.ptp(np.asarray(values, dtype=np.float64)))

    return (
        span(stored_at) <= SITTING_S
        and span([q.level_dbfs for q in qualities]) <= SITTING_LEVEL_DB
        and span([q.level_dbfs - q.snr_db for q in qualities]) <= SITTING_FLOOR_DB
        and span([q.bandwidth_hz for q in qualities]) <= SITTING_BANDWIDTH_HZ
    )


def check_takes(
    rows: np.ndarray, qualities: Sequence[Quality], stored_at: np.ndarray
) -> TakesCheck:
    """Judge a voice's takes: ``rows`` (n, D) their feature rows standardised by the model that
    will learn from them, ``qualities`` their recordings' n measures, ``stored_at`` (n,) when
    each was stored, in seconds."""
    n = len(rows)
    limit = spread_limit(rows.shape[1])
    minutes = float(np.ptp(stored_at)) / 60 if n else 0.0
    if n < MIN_TAKES_TO_JUDGE:
        return TakesCheck(n, None, limit, minutes, inconsistent=False, one_sitting=False)
    spread = float(np.median(leave_one_out_distances(rows.astype(np.float64))))
    return TakesCheck(n, spread, limit, minutes, inconsistent=spread > limit,
                      one_sitting=one_sitting(qualities, stored_at))  # fmt: skip
