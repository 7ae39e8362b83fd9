"""How a recording is cut into windows and which of them hold speech."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from pipeline.audio import MAX_SECONDS_LIMIT
from pipeline.config import FeatureConfig, option
from pipeline.errors import ParameterError

__all__ = ["MAX_WINDOW_S", "MIN_WINDOW_S", "TimelineConfig"]

MIN_WINDOW_S = 0.25  # shorter windows hold too few frames for a histogram worth naming
MAX_WINDOW_S = 10.0  # longer ones blur turns together


@dataclass(frozen=True)
class TimelineConfig:
    """Windows, speech detection and smoothing of a timeline (``pipeline.timeline``)."""

    window_s: float = option(1.0, "seconds of audio behind each answer")
    hop_s: float = option(0.25, "seconds between answers (one answer per hop)")
    floor_dbfs: float = option(
        -70.0, "frames quieter than this (dB below a full-scale tone) are never speech"
    )
    over_noise_db: float = option(
        9.0, "frames at least this far above the recent noise floor are speech"
    )
    noise_s: float = option(
        10.0, "the noise floor is the quietest tenth of the frames of this many seconds before"
    )
    smooth: int = option(
        3, "the majority of this many hops names each hop (odd; 1 leaves one-hop flickers)"
    )
    pause_s: float = option(
        0.5,
        "silences up to this long between speech belong to the turns around them (a speaker's "
        "pauses between words); 0 keeps every silent hop",
    )
    claim_s: float = option(
        2.0,
        "unknown stretches up to this long between two parts of one voice's turn, most of whose "
        "hops sound closest to that voice, are that voice's, and so are those up to half a "
        "window beside its turn (windows across words or past a turn's edge); 0: none",
    )

    def __post_init__(self) -> None:
        if not MIN_WINDOW_S <= self.window_s <= MAX_WINDOW_S:
            raise ParameterError(
                f"window_s={self.window_s!r} must be from {MIN_WINDOW_S:g} to {MAX_WINDOW_S:g} s"
            )
        if not 0 < self.hop_s <= self.window_s:
            raise ParameterError(
                f"hop_s={self.hop_s!r} must be positive and at most window_s={self.window_s!r}"
            )
        # No recording is longer than MAX_SECONDS_LIMIT: a longer stretch means nothing more,
        # and the frame counts derived from these must stay integers.
        if not self.window_s <= self.noise_s <= MAX_SECONDS_LIMIT:
            raise ParameterError(
                f"noise_s={self.noise_s!r} must be from window_s={self.window_s!r} to "
                f"{MAX_SECONDS_LIMIT:g} s"
            )
        if not 0 <= self.pause_s <= MAX_SECONDS_LIMIT:
            raise ParameterError(
                f"pause_s={self.pause_s!r} must be from 0 to {MAX_SECONDS_LIMIT:g} s"
            )
        if not 0 <= self.claim_s <= MAX_SECONDS_LIMIT:
            raise ParameterError(
                f"claim_s={self.claim_s!r} must be from 0 to {MAX_SECONDS_LIMIT:g} s"
            )
        if not (math.isfinite(self.floor_dbfs) and self.floor_dbfs <= 0):
            raise ParameterError(
                f"floor_dbfs={self.floor_dbfs!r} must be a number of dB at most 0 (a full-scale "
                "tone's level)"
            )
        if not (math.isfinite(self.over_noise_db) and self.over_noise_db >= 0):
            raise ParameterError(
                f"over_noise_db={self.over_noise_db!r} must be a number of dB >= 0"
            )
        if not (isinstance(self.smooth, int) and self.smooth >= 1 and self.smooth % 2 == 1):
            raise ParameterError(f"smooth={self.smooth!r} must be an odd positive integer")

    def frames(self, cfg: FeatureConfig) -> tuple[int, int]:
        """Feature frames per window and per hop under ``cfg`` (a window of ``n`` samples has
        ``1 + n // hop_length`` centred frames, as a clip of that length); a hop rounded past
        the window is the window. Raises :class:`ParameterError` for a hop shorter than one
        frame, which no answer could keep."""
        frame_s = cfg.hop_length / cfg.sample_rate
        if self.hop_s < frame_s:
            raise ParameterError(
                f"hop_s={self.hop_s!r} is shorter than one feature frame: it must be from "
                f"{frame_s:g} s to window_s={self.window_s!r}"
            )
        window_frames = 1 + round(self.window_s * cfg.sample_rate) // cfg.hop_length
        hop_frames = min(round(self.hop_s * cfg.sample_rate / cfg.hop_length), window_frames - 1)
        return window_frames, hop_frames

    def in_use(self, cfg: FeatureConfig) -> tuple[float, float]:
        """The window and hop in use under ``cfg``, in seconds: those asked for, in whole
        feature frames (:meth:`frames`)."""
        window_frames, hop_frames = self.frames(cfg)
        rate = cfg.sample_rate
        return (window_frames - 1) * cfg.hop_length / rate, hop_frames * cfg.hop_length / rate

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
