"""From one label per hop to turns: one-hop flickers smoothed away, unknown stretches inside a
voice's turn given to it, runs merged, RTTM written."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.openset import Reason

__all__ = [
    "HopLabel",
    "Segment",
    "bridge_pauses",
    "claim_unknown",
    "merge_turns",
    "refine_edges",
    "smooth_labels",
    "speaking_time",
    "to_rttm",
]


@dataclass(frozen=True)
class HopLabel:
    """What one hop was heard as: ``speaker`` (a label or "unknown"), None for silence; ``best``
    the voice it is closest to, even when unknown (``Prediction.best``)."""

    speaker: str | None
    confidence: float = 0.0
    reason: Reason | None = None
    best: str | None = None


@dataclass(frozen=True)
class Segment:
    """One turn: ``speaker`` from ``start`` to ``end`` seconds; ``confidence`` is the mean top
    score of its hops; ``reason`` the commonest reason of an unknown one."""

    start: float
    end: float
    speaker: str
    confidence: float
    unknown: bool
    reason: Reason | None


def smooth_labels(speakers: Sequence[str | None], width: int) -> list[str | None]:
    """Each hop's speaker (None: silence) replaced by the commonest among the ``width`` hops
    centred on it; a tie keeps the hop's own. ``width`` 1 changes nothing."""
    half = width // 2
    out: list[str | None] = []
    for i, own in enumerate(speakers):
        counts = Counter(speakers[max(0, i - half) : i + half + 1])
        best, n = counts.most_common(1)[0]
        out.append(own if counts[own] == n else best)
    return out


def bridge_pauses(speakers: Sequence[str | None], longest: int) -> list[str | None]:
    """Runs of at most ``longest`` silent hops (None) with speech on both sides given to that
    speech: its first half to the speaker before, the rest to the speaker after."""
    out = list(speakers)
    i = 0
    while i < len(out):
        j = i
        while j < len(out) and out[j] is None:
            j += 1
        if j > i and i > 0 and j < len(out) and j - i <= longest:
            half = i + (j - i) // 2
            out[i:half] = [out[i - 1]] * (half - i)
            out[half:j] = [out[j]] * (j - half)
        i = j + 1
    return out


def claim_unknown(
    speakers: Sequence[str | None],
    heard_as: Sequence[str | None],
    inside: int,
    edge: int,
    unknown: str,
) -> list[str | None]:
    """``speakers`` with runs of ``unknown`` hops given to the voice whose turn they lie in: a
    run of at most ``inside`` hops between two runs of one voice, or of at most ``edge`` hops
    beside a run of a voice, when most of its hops are closest to that voice (``heard_as``).

    A window across a turn's words, or past its edge, holds frames of several words or of
    silence, which no single take it is compared with does, and lies farther from the voice's
    takes than a window inside a word: far, though the network hears the voice. A stranger
    between two turns of one voice stays unknown unless most of their hops sound closest to it.
    """
    out = list(speakers)
    runs = _runs(speakers)
    for k, (i, j, speaker) in enumerate(runs):
        if speaker != unknown:
            continue
        before = runs[k - 1][2] if k > 0 else None
        after = runs[k + 1][2] if k + 1 < len(runs) else None
        voice, count = Counter(heard_as[i:j]).most_common(1)[0]
        if voice is None or voice == unknown or count * 2 <= j - i:
            continue
        between = before == after == voice and j - i <= inside
        beside = voice in (before, after) and j - i <= edge
        if between or beside:
            out[i:j] = [voice] * (j - i)
    return out


def _runs(speakers: Sequence[str | None]) -> list[tuple[int, int, str | None]]:
    """Each run of equal ``speakers``: its first hop, the hop after its last, and its speaker."""
    runs, i = [], 0
    while i < len(speakers):
        j = i + 1
        while j < len(speakers) and speakers[j] == speakers[i]:
            j += 1
        runs.append((i, j, speakers[i]))
        i = j
    return runs


def merge_turns(
    labels: Sequence[HopLabel],
    speakers: Sequence[str | None],
    times: np.ndarray,
    hop_s: float,
    duration_s: float,
    unknown: str,
) -> list[Segment]:
    """Runs of hops with the same (smoothed) ``speakers`` as segments; silence is none. Hop
    ``i`` stands for ``times[i] -+ hop_s / 2``; the first and last reach the recording's ends.
    ``labels`` give each hop's score and reason; ``unknown`` is the name of no known voice."""
    segments = []
    for i, j, speaker in _runs(speakers):
        if speaker is None:
            continue
        start = 0.0 if i == 0 else float(times[i]) - hop_s / 2
        end = duration_s if j == len(speakers) else float(times[j - 1]) + hop_s / 2
        own = [h for h in labels[i:j] if h.speaker == speaker] or labels[i:j]
        reasons = Counter(h.reason for h in own if h.reason is not None)
        segments.append(
            Segment(
                start=round(max(start, 0.0), 3),
                end=round(min(end, duration_s), 3),
                speaker=speaker,
                confidence=round(float(np.mean([h.confidence for h in own])), 4),
                unknown=speaker == unknown,
                reason=reasons.most_common(1)[0][0] if speaker == unknown and reasons else None,
            )
        )
    return segments


def refine_edges(
    segments: list[Segment], frame_speech: np.ndarray, frame_s: float, reach_s: float
) -> list[Segment]:
    """``segments`` with each edge that meets silence moved to the nearest speech frame within
    ``reach_s``: hops place an edge to within half a hop, frames to within one frame. An edge
    goes no further than the middle of the silence it meets, so that turns never overlap.
    ``frame_speech`` (frames,) bool says which frames (``frame_s`` apart, the first centred on
    0) are speech."""
    reach = round(reach_s / frame_s)
    spoken = np.flatnonzero(frame_speech)

    def near(edge: float) -> np.ndarray:  # the speech frames within reach of an edge
        k = round(edge / frame_s)
        return spoken[np.searchsorted(spoken, k - reach) : np.searchsorted(spoken, k + reach + 1)]

    out = []
    for i, s in enumerate(segments):
        start, end = s.start, s.end
        before = 0.0 if i == 0 else (segments[i - 1].end + s.start) / 2
        after = math.inf if i == len(segments) - 1 else (s.end + segments[i + 1].start) / 2
        if before < s.start or i == 0:
            found = near(s.start)
            start = max(found[0] * frame_s - frame_s / 2, before) if len(found) else start
        if after > s.end:
            found = near(s.end)
            end = min(found[-1] * frame_s + frame_s / 2, after) if len(found) else end
        if end > start:
            out.append(dataclasses.replace(s, start=round(start, 3), end=round(end, 3)))
    return out


def speaking_time(segments: Sequence[Segment]) -> dict[str, float]:
    """Seconds each speaker (and "unknown") speaks in ``segments``, most first."""
    totals: dict[str, float] = {}
    for s in segments:
        totals[s.speaker] = totals.get(s.speaker, 0.0) + s.end - s.start
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return {name: round(seconds, 3) for name, seconds in ranked}


def to_rttm(segments: Sequence[Segment], file_id: str) -> str:
    """``segments`` as RTTM lines (NIST's diarization format), one ``SPEAKER`` line each:
    ``SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>``. Fields are
    space-separated, so spaces in ``file_id`` and speaker names become underscores."""
    file_id = "_".join(file_id.split()) or "recording"
    return "".join(
        f"SPEAKER {file_id} 1 {s.start:.3f} {s.end - s.start:.3f} <NA> <NA> "
        f"{'_'.join(s.speaker.split())} <NA> <NA>\n"
        for s in segments
    )
