"""Who spoke when: timelines of made-up conversations, and what the live path costs.

Accuracy: a model trained on FSDD takes 15-49 (as ``bench.accuracy`` trains; or ``--model``)
hears conversations built from takes 5-14, which it never saw: turns of 3-8 digits from one
speaker, 0.2-1.5 s of silence between turns, faint noise throughout, some turns by strangers
(LibriSpeech speakers, right when answered "unknown"). One set is clean; in the other, some turns
go through the harsh conditions of ``pipeline.augment``; a third is the clean one, each cut to
start at its first word (a recording started late: no quiet before the first words). Prints
the share of speech time labelled right, the diarization error rate (``pyannote.metrics``), and
the median boundary error.

Live (``--live``): a server with 2 workers on loopback; streams of 16 kHz PCM sent in real time,
one 0.25 s frame per hop, so each answer's latency is from the frame that completed its window.
Prints server time per hop, hop latency p50/p99 at 1, 20 and 100 streams, /predict's p50/p99
alone and beside 100 streams, the workers' memory per stream and over time, memory of one stream
over 10 minutes of audio (in process, faster than real time), and /timeline on 10 minutes.

    python -m bench.timeline [--model DIR] [--conversations 20] [--live] [--seconds 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench.common import DATA_ROOT, fsdd_dir, split_by_take
from pipeline.audio import decode
from pipeline.augment import degrade
from pipeline.bundle import Bundle, load_bundle
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.recording import timeline
from pipeline.timeline.turns import Segment

SR = 16_000
WORDS = (3, 8)  # digits per turn
SILENCE_S = (0.2, 1.5)  # between turns
WORD_GAP_S = (0.05, 0.25)  # between the digits of one turn
TURNS = (8, 12)  # per conversation
STRANGER_SHARE = 0.15  # of turns
HARSH_SHARE = 0.3  # of turns, in the harsh set
NOISE_DBFS = -75.0  # faint white noise under everything: a quiet microphone's floor
VOICED_DB = 30.0  # a turn's annotation spans its samples within this of its peak
STRANGER = "stranger"  # reference label prefix of LibriSpeech speakers
UNKNOWN = "unknown"
# Share of speech time labelled right; "first word" is the clean set started at its first word.
GOALS = {"clean": 0.90, "harsh": 0.80, "first word": 0.90}
BOUNDARY_GOAL_S = 0.25


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str  # an FSDD speaker, or "stranger-<id>"
    harsh: bool


def fsdd_model(model: Path | None, work: Path) -> tuple[Bundle, Path]:
    """The bundle to test and the folder of FSDD's held-out takes."""
    _, test_dir = split_by_take(fsdd_dir(), work / "fsdd")
    if model is None:
        from pipeline.config import TrainConfig
        from pipeline.train import TrainOptions, train

        model = work / "model"
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voiceid"
        print("training on FSDD takes 15-49 (as bench.accuracy does)...", flush=True)
        train(work / "fsdd" / "train", model, TrainOptions(train=TrainConfig(), cache_dir=cache))
    return load_bundle(model), test_dir


def load_pools(test_dir: Path) -> tuple[dict[str, list[np.ndarray]], list[tuple[str, np.ndarray]]]:
    """Held-out digits per FSDD speaker, and LibriSpeech utterances (speaker id, samples)."""
    digits = {
        d.name: [decode(p, sample_rate=SR).samples for p in sorted(d.glob("*.wav"))]
        for d in sorted(test_dir.iterdir())
    }
    strangers = [
        (p.parent.name, decode(p, sample_rate=SR).samples)
        for p in sorted((DATA_ROOT / "librispeech-mini").rglob("*.flac"))
    ]
    return digits, strangers


def stranger_turn(rng: np.random.Generator, strangers: list[tuple[str, np.ndarray]]) -> tuple[
    str, np.ndarray
]:  # fmt: skip
    """1.5-4 s of one LibriSpeech utterance, as long as a turn of digits."""
    speaker, y = strangers[int(rng.integers(len(strangers)))]
    n = min(len(y), int(rng.uniform(1.5, 4.0) * SR))
    start = int(rng.integers(0, len(y) - n + 1))
    return f"{STRANGER}-{speaker}", y[start : start + n]


def digit_turn(rng: np.random.Generator, clips: list[np.ndarray]) -> np.ndarray:
    parts = []
    for _ in range(int(rng.integers(WORDS[0], WORDS[1] + 1))):
        parts += [clips[int(rng.integers(len(clips)))],
                  np.zeros(int(rng.uniform(*WORD_GAP_S) * SR), np.float32)]  # fmt: skip
    return np.concatenate(parts[:-1])


def voiced_span(y: np.ndarray) -> tuple[int, int]:
    """The first and last sample of ``y`` within ``VOICED_DB`` of its peak: a turn is annotated
    from its first word's onset to its last word's end, not with the silence around the clips."""
    loud = np.flatnonzero(np.abs(y) >= np.abs(y).max() * 10 ** (-VOICED_DB / 20))
    return int(loud[0]), int(loud[-1]) + 1


def conversation(
    rng: np.random.Generator,
    digits: dict[str, list[np.ndarray]],
    strangers: list[tuple[str, np.ndarray]],
    harsh_share: float,
) -> tuple[np.ndarray, list[Turn]]:
    """One conversation: the waveform and its turns."""
    names = sorted(digits)
    parts, turns, at, last = [np.zeros(int(0.5 * SR), np.float32)], [], 0.5, ""
    for _ in range(int(rng.integers(TURNS[0], TURNS[1] + 1))):
        if rng.random() < STRANGER_SHARE:
            speaker, y = stranger_turn(rng, strangers)
        else:
            speaker = str(rng.choice([n for n in names if n != last]))
            y = digit_turn(rng, digits[speaker])
        harsh = bool(rng.random() < harsh_share)
        first, last_voiced = voiced_span(y)
        if harsh:
            y = degrade(y, SR, rng)
        turns.append(Turn(at + first / SR, at + last_voiced / SR, speaker, harsh))
        gap = np.zeros(int(rng.uniform(*SILENCE_S) * SR), np.float32)
        parts += [y.astype(np.float32), gap]
        at += (len(y) + len(gap)) / SR
        last = speaker
    y = np.concatenate(parts)
    y += (10 ** (NOISE_DBFS / 20) * rng.standard_normal(len(y))).astype(np.float32)
    return y, turns


def from_first_word(y: np.ndarray, turns: list[Turn]) -> tuple[np.ndarray, list[Turn]]:
    """The conversation cut to start at its first word's onset, as a recording started late
    does: no quiet before the first words."""
    cut = turns[0].start
    moved = [dataclasses.replace(t, start=t.start - cut, end=t.end - cut) for t in turns]
    return y[round(cut * SR) :], moved


def labelled_right(segments: list[Segment], turns: list[Turn], step: float = 0.01) -> float:
    """Seconds of the turns' speech whose answer is right (a stranger's when "unknown")."""
    right = 0.0
    for turn in turns:
        want = UNKNOWN if turn.speaker.startswith(STRANGER) else turn.speaker
        for t in np.arange(turn.start, turn.end, step):
            said = next((s.speaker for s in segments if s.start <= t < s.end), None)
            right += step if said == want else 0.0
    return right


def boundary_errors(segments: list[Segment], turns: list[Turn]) -> list[float]:
    """For each turn's start and end, the distance to the nearest segment boundary."""
    found = np.array([b for s in segments for b in (s.start, s.end)] or [np.inf])
    return [float(np.min(np.abs(found - b))) for turn in turns for b in (turn.start, turn.end)]


def der(pairs: list[tuple[list[Segment], list[Turn], float]], collar: float) -> float:
    """The diarization error rate over ``(segments, turns, duration)`` of each conversation."""
    from pyannote.core import Annotation, Timeline
    from pyannote.core import Segment as Span
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar)
    for segments, turns, duration in pairs:
        reference, hypothesis = Annotation(), Annotation()
        for turn in turns:
            reference[Span(turn.start, turn.end)] = turn.speaker
        for s in segments:
            hypothesis[Span(s.start, s.end)] = s.speaker
        metric(reference, hypothesis, uem=Timeline([Span(0, duration)]))
    return float(abs(metric))


def accuracy(bundle: Bundle, test_dir: Path, n: int, seed: int) -> bool:
    digits, strangers = load_pools(test_dir)
    voices = len({s for s, _ in strangers})
    print(f"model {bundle.name} ({', '.join(bundle.labels)}); {n} conversations per set, "
          f"seed {seed}; strangers: {voices} LibriSpeech speakers")  # fmt: skip
    met = True
    for name, harsh_share in (("clean", 0.0), ("harsh", HARSH_SHARE), ("first word", 0.0)):
        rng = np.random.default_rng(seed)
        pairs, right, speech, errors, seconds, took = [], 0.0, 0.0, [], 0.0, 0.0
        for _ in range(n):
            y, turns = conversation(rng, digits, strangers, harsh_share)
            if name == "first word":
                y, turns = from_first_word(y, turns)
            started = time.perf_counter()
            with threadpool_limits(1):  # as a server runs it (service.model_store)
                found = timeline(bundle, y, TimelineConfig())
            took += time.perf_counter() - started
            pairs.append((found.segments, turns, len(y) / SR))
            right += labelled_right(found.segments, turns)
            speech += sum(t.end - t.start for t in turns)
            errors += boundary_errors(found.segments, turns)
            seconds += len(y) / SR
        share, median_error = right / speech, statistics.median(errors)
        met &= share >= GOALS[name] and median_error <= BOUNDARY_GOAL_S
        print(
            f"{name}: {seconds / 60:.1f} min of audio, {speech / 60:.1f} min of speech; "
            f"labelled right {share:.3f} (goal >= {GOALS[name]:.2f}); DER {der(pairs, 0.0):.3f} "
            f"(collar 0.25 s: {der(pairs, 0.25):.3f}); median boundary error "
            f"{median_error:.3f} s (goal <= {BOUNDARY_GOAL_S}); timeline "
            f"{took / seconds * 600:.2f} s per 10 min in process"
        )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a bundle trained on FSDD takes 15-49 "
                        "(default: train one, as bench.accuracy does)")  # fmt: skip
    parser.add_argument("--conversations", type=int, default=20, help="per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--live", action="store_true", help="also measure the live path")
    parser.add_argument("--seconds", type=float, default=30.0, help="of each live run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle, test_dir = fsdd_model(args.model, Path(tmp))
        met = accuracy(bundle, test_dir, args.conversations, args.seed)
        if args.live:
            from bench.timeline_live import live

            met &= live(bundle.path, test_dir, args.seconds)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
