"""Decoding: bytes or a path in, mono float32 at the configured rate out.

The one place where files and bytes become arrays; training, evaluation and the service all come
through here. WAV, FLAC, OGG/Vorbis and MP3 are read by libsndfile (soundfile); anything else
(m4a, webm/opus, ...) goes through ffmpeg when it is installed. Plain 16-bit PCM WAV, what
browsers and most clients send, is read by the standard library's ``wave`` first: the same
samples as libsndfile (tested equal) in a fifth of the time, which matters per request.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from pipeline.errors import (
    ClipTooLongError,
    DecodeError,
    InvalidAudioError,
    ParameterError,
    VoiceIdError,
)
from pipeline.paths import as_path
from pipeline.quality.measures import clipped_fraction, companded_levels

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_MAX_SECONDS",
    "MAX_SECONDS_LIMIT",
    "MIN_SOURCE_RATE",
    "SILENCE_DBFS",
    "Clip",
    "ClipSource",
    "NotStreamableError",
    "check_max_seconds",
    "clip_source",
    "decode",
    "decode_blocks",
    "is_pcm16_wav",
    "max_decoded_values",
    "read_clip_file",
    "sniff_format",
    "to_mono",
    "validate_waveform",
]

# The file names a recording may have in a data folder (training scans for these).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".mp4", ".aac", ".opus", ".webm", ".aiff",
     ".aif", ".au", ".wma"}
)  # fmt: skip
DEFAULT_MAX_SECONDS = 60.0  # longest clip accepted, seconds
# The highest limit on a clip's length that may be set, seconds: a day. The size and sample
# limits derived from it must stay integers a file's header can be held to (inf is none).
MAX_SECONDS_LIMIT = 24 * 3600.0
SILENCE_DBFS = -80.0  # a clip whose peak is below this level is silent (16-bit LSB: -90)
MIN_SOURCE_RATE = 8000  # Hz: below telephone rate there is no speech band left to measure
# A clip resampled to the model's rate that keeps less than this share of its energy (dB) held
# its sound above the band the model hears (ultrasound, a 96 kHz file's high tones alone).
MIN_KEPT_DB = -30.0
# A clip whose mean lies further from zero than its loudest DC_BLOCK_S swings about that block's
# own mean is an offset, not sound: a faulty microphone or converter, or a constant.
DC_BLOCK_S = 0.1  # seconds
NEGLIGIBLE_DC = 1e-3  # an offset under this (-60 dBFS) is never weighed
SWING_MARGIN = 0.99  # of a float32 RMS, a bound on the float64 one below it
# Channels that, mixed to one, give this many dB less than the loudest would alone cancel:
# one of them is inverted (a balanced cable or a stereo effect), and the mix loses the voice.
CANCEL_DB = 20.0
# Decoded values (frames x channels) allowed per second of the longest clip: 48 kHz stereo.
# A header that promises more is refused before decoding (a small FLAC can hold gigabytes).
VALUES_PER_SECOND = 2 * 48_000
BLOCK_FRAMES = 1 << 16  # libsndfile reads this many frames at a time, mixed to mono at once
READ_CHUNK = 1 << 20  # bytes asked of a pipe or device at a time
FFMPEG_TIMEOUT_S = 5.0  # wall-clock budget of one ffmpeg decode
# The only ffmpeg demuxers an upload may reach, by sniffed container: playlists (HLS, ffconcat)
# and other formats that name further files or URLs are never probed.
_FFMPEG_DEMUXERS = {
    "MP4/M4A": "mov",
    "WebM/Matroska": "matroska",
    "Ogg": "ogg",
    "WAV": "wav",
    "FLAC": "flac",
    "MP3": "mp3",
    "AAC": "aac",
    "AMR": "amr",
    "AIFF": "aiff",
}

# The containers libsndfile reads itself: one of these that reaches ffmpeg is damaged, or holds
# an encoding this libsndfile lacks.
_LIBSNDFILE_KINDS = frozenset({"WAV", "FLAC", "Ogg", "MP3", "AIFF"})

# Leading bytes of containers libsndfile cannot read, to name them in errors.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"ftyp", 4, "MP4/M4A"),
    (b"\x1a\x45\xdf\xa3", 0, "WebM/Matroska"),
    (b"OggS", 0, "Ogg"),
    (b"RIFF", 0, "WAV"),
    (b"fLaC", 0, "FLAC"),
    (b"ID3", 0, "MP3"),
    (b"#!AMR", 0, "AMR"),
    (b"FORM", 0, "AIFF"),
    (b"\x89PNG", 0, "PNG image"),
    (b"%PDF", 0, "PDF document"),
    (b"\xff\xd8\xff", 0, "JPEG image"),
    (b"GIF8", 0, "GIF image"),
    (b"PK\x03\x04", 0, "ZIP archive"),
    (b"\x1f\x8b", 0, "gzip archive"),
    (b"{", 0, "JSON/text"),
)
# Control characters that never appear in text (tab, line feed, form feed and CR do).
_NOT_IN_TEXT = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Clip:
    """A decoded clip: ``samples`` is 1-D float32 at ``sample_rate`` Hz, in [-1, 1] but for a
    float file's, which may lie beyond (``level_dbfs`` above 0).

    ``source_clipped_fraction`` is the share of the recording's own samples, before any
    resampling, that sit flat on its peak (``pipeline.quality.measures.clipped_fraction``):
    resampling rounds the flat tops of a clipped recording away, so it is measured here, where
    the source's samples still are (None for a clip made otherwise). So is
    ``source_companded_levels`` (``pipeline.quality.measures.companded_levels``): resampling
    spreads a telephone code's few levels over many."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    channels: int
    source_clipped_fraction: float | None = None
    source_companded_levels: int | None = None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def sniff_format(data: bytes) -> str:
    """A human name for the container in ``data`` from its leading bytes ("unknown" if none)."""
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return name
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0:
        return "AAC"  # ADTS: the MPEG sync word with layer bits 00
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        return "MP3"
    return "text" if _is_text(data[:512]) else "unknown"


def _is_text(head: bytes) -> bool:
    """Whether ``head``, a file's leading bytes, reads as UTF-8 text (notes, a playlist, HTML):
    no control characters, and valid UTF-8 but for a character cut off at its end."""
    if len(head) < 4 or _NOT_IN_TEXT.search(head):
        return False
    for cut in range(4):  # the last character may be cut off by the slice
        try:
            head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array into one float32 channel."""
    if samples.ndim == 2 and samples.shape[1] == 1:
        samples = samples[:, 0]
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    return samples.mean(axis=1, dtype=np.float32)


def check_max_seconds(max_seconds: float) -> None:
    """Raise :class:`ParameterError` unless ``max_seconds``, a limit on a clip's length, is a
    number above 0 and at most ``MAX_SECONDS_LIMIT``: every front end that sets one checks it
    here, before any file is read."""
    if not (
        isinstance(max_seconds, int | float)
        and not isinstance(max_seconds, bool)
        and 0 < max_seconds <= MAX_SECONDS_LIMIT
    ):
        raise ParameterError(
            f"max_seconds={max_seconds!r} must be a number of seconds above 0 and at most "
            f"{MAX_SECONDS_LIMIT:g}"
        )


def validate_waveform(samples: np.ndarray, sample_rate: int, *, max_seconds: float) -> None:
    """Raise :class:`InvalidAudioError` for an empty, too long, non-finite or silent waveform."""
    _validated_magnitude(samples, sample_rate, max_seconds)


def _validated_magnitude(
    samples: np.ndarray, sample_rate: int, max_seconds: float
) -> tuple[np.ndarray, int]:
    """:func:`validate_waveform`, returning ``|samples|`` and where its peak is, which the
    clipping and companding measures read too."""
    if samples.size == 0:
        raise InvalidAudioError("clip has no samples")
    _check_length(len(samples), sample_rate, max_seconds)
    magnitude = np.abs(samples)
    at = int(np.argmax(magnitude))  # the first NaN when any sample is one
    peak = float(magnitude[at])  # NaN or infinite when any sample is: counted then
    _check_peak(peak, lambda: _non_finite(samples))
    return magnitude, at


def _check_length(n_samples: int, sample_rate: int, max_seconds: float) -> None:
    duration = n_samples / sample_rate
    if duration > max_seconds:
        raise _too_long(duration, max_seconds)


def _too_long(seconds: float, max_seconds: float) -> ClipTooLongError:
    """The error for a clip of ``seconds`` over ``max_seconds``: its length to two decimals, or
    to as many more as show it over the limit (2.0001 s, not 2.00 s, when the limit is 2 s)."""
    for decimals in range(2, 18):  # 17 decimals tell any two doubles apart
        shown = f"{seconds:.{decimals}f}"
        if float(shown) > max_seconds:
            break
    return ClipTooLongError(f"clip is {shown} s long; the maximum is {max_seconds:g} s")


def _check_peak(peak: float, non_finite: Callable[[], int]) -> None:
    """Refuse a clip whose ``peak`` magnitude is not finite (counting its ``non_finite``
    samples then) or below ``SILENCE_DBFS``."""
    if not math.isfinite(peak):
        raise InvalidAudioError(f"clip has {non_finite()} non-finite samples (NaN or infinity)")
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < SILENCE_DBFS:
        shown = "-inf" if peak == 0 else f"{peak_db:.1f}"
        raise InvalidAudioError(
            f"clip is silent: peak level {shown} dBFS is below {SILENCE_DBFS:g} dBFS"
        )


def _non_finite(samples: np.ndarray) -> int:
    return int(np.count_nonzero(~np.isfinite(samples)))


def decode(
    source: bytes | str | Path,
    *,
    sample_rate: int,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Clip:
    """Decode ``source`` (file bytes or a path) to a validated mono float32 clip at ``sample_rate``.

    Raises :class:`DecodeError` when the data is not audio we can read and
    :class:`InvalidAudioError` when it is empty, too long, non-finite or silent, when its
    channels cancel once mixed to one, when its sound lies above ``sample_rate / 2`` (or
    overflows when resampled), or when it is offset from zero by more than it swings.
    """
    if sample_rate < 1:
        raise ParameterError(f"sample_rate={sample_rate} must be a positive integer")
    check_max_seconds(max_seconds)
    data = read_clip_file(source, max_seconds) if isinstance(source, str | Path) else source
    if not data:
        raise InvalidAudioError("clip is empty (0 bytes)")
    samples, source_rate, channels = _read_any(data, sample_rate, max_seconds)
    magnitude, at = _validated_magnitude(samples, source_rate, max_seconds)
    clipped = clipped_fraction(samples, magnitude=magnitude, peak_at=at)
    companded = companded_levels(samples, magnitude=magnitude, peak_at=at)
    resampled = samples
    if source_rate != sample_rate:
        resampled = _resample(samples, source_rate, sample_rate)
        peak = float(magnitude[at])
        overflowed = peak > 1 and not np.isfinite(np.maximum.reduce(np.abs(resampled)))
        _check_resampled(peak, overflowed, _mean_square(samples), _mean_square(resampled),
                         source_rate, sample_rate)  # fmt: skip
    _check_offset(samples, source_rate, at)  # on the source: resampling rings at a constant's ends
    return Clip(resampled, sample_rate, source_rate, channels, clipped, companded)


def _mean_square(samples: np.ndarray) -> float:
    with np.errstate(over="ignore"):  # infinite for samples far beyond full scale: refused later
        return float(np.dot(samples, samples)) / len(samples)


def _check_resampled(
    peak: float, overflowed: bool, before: float, after: float, source_rate: int, sample_rate: int
) -> None:
    """Refuse a clip that resampling ``overflowed`` (finite samples far beyond full scale,
    ``peak`` the source's, gave non-finite ones) or whose mean square ``after`` resampling is
    less than ``MIN_KEPT_DB`` of the source's ``before``: its sound lay above the band a model at
    ``sample_rate`` hears, and what is left is the resampler's own residue."""
    if overflowed:
        raise InvalidAudioError(
            f"clip overflows when resampled from {source_rate} Hz: its peak sample {peak:.3g} "
            "is far beyond full scale (1.0)"
        )
    if not (math.isfinite(before) and before > 0):  # overflowed: the features refuse it
        return
    kept_db = 10 * math.log10(after / before) if after > 0 else -math.inf
    if kept_db < MIN_KEPT_DB:
        raise InvalidAudioError(
            f"clip holds almost no sound below {sample_rate / 2:g} Hz: resampled from "
            f"{source_rate} Hz to {sample_rate} Hz it keeps {kept_db:.0f} dB of its energy, "
            f"under the {MIN_KEPT_DB:g} dB needed"
        )


def _check_offset(samples: np.ndarray, sample_rate: int, peak_at: int) -> None:
    """Refuse a clip whose mean lies further from zero than its loudest ``DC_BLOCK_S`` swings
    about that block's own mean (see ``DC_BLOCK_S``): the offset, not the voice, fills its
    spectrum's lowest bins, and it would be measured as a background louder than the speech.
    ``peak_at`` is the index of its loudest sample."""
    block = max(1, round(DC_BLOCK_S * sample_rate))
    if len(samples) < block:  # too short to tell an offset from a sound: it holds no speech
        return
    # Samples far beyond full scale overflow float32 sums (near the float maximum, to inf - inf:
    # nan): the features refuse them, quietly.
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.add.reduce(samples)) / len(samples)  # float32's pairwise sum
        if abs(mean) < NEGLIGIBLE_DC or not math.isfinite(mean):  # most recordings
            return
        # The block holding the peak swings no more than the loudest: when it swings well more
        # than the offset, so does the loudest (most recordings with a small offset), at a tenth
        # of the cost. Its RMS in float32 is within far less than SWING_MARGIN of the float64 one.
        first = min(peak_at // block, len(samples) // block - 1) * block
        swing = _swing(samples[first : first + block])  # infinite when float32 overflows
        if abs(mean) <= SWING_MARGIN * swing < math.inf:
            return
    _refuse_offset(mean, _loudest_swing(samples, block))  # in float64, as decode_blocks weighs


def _swing(block: np.ndarray) -> float:
    """The RMS of ``block`` about its own mean, in float32: one sum and one dot product."""
    about = block - np.float32(np.add.reduce(block) / len(block))
    return math.sqrt(float(np.dot(about, about)) / len(block))


def _refuse_offset(mean: float, swing: float) -> None:
    """Refuse a clip offset from zero by ``mean``, more than its loudest block's RMS ``swing``
    about its own mean (:func:`_check_offset`)."""
    if abs(mean) > swing:
        raise InvalidAudioError(
            f"clip is offset from zero by {mean:+.3f} of full scale, more than its loudest "
            f"{DC_BLOCK_S:g} s swings about its own mean (RMS {swing:.3f}): a fault of the "
            "microphone or converter, or no sound at all"
        )


def _loudest_swing(samples: np.ndarray, n: int) -> float:
    """The largest RMS about its own mean of the blocks of ``n`` of ``samples``, taken over
    ``BLOCK_FRAMES`` samples' worth of blocks at a time: a variance in float64 copies what it
    reads, and a timeline's ten minutes at 48 kHz would be 230 MB at once."""
    blocks = samples[: len(samples) // n * n].reshape(-1, n)
    step = max(1, BLOCK_FRAMES // n)
    loudest = 0.0
    for first in range(0, len(blocks), step):
        spread = blocks[first : first + step].var(axis=1, dtype=np.float64)
        loudest = max(loudest, float(np.maximum.reduce(spread)))
    return math.sqrt(loudest)


def _resample(samples: np.ndarray, source_rate: int, sample_rate: int) -> np.ndarray:
    """``samples`` at ``source_rate`` Hz resampled to ``sample_rate`` Hz, float32; refused
    when they last less than one sample at the new rate (a few samples at a high rate): every
    caller may then count on a clip having samples, as :func:`validate_waveform` checked."""
    resampled = soxr.resample(samples, source_rate, sample_rate, quality="HQ")
    if resampled.size == 0:
        _refuse_unresampled(len(samples), source_rate, sample_rate)
    return resampled.astype(np.float32, copy=False)


def _refuse_unresampled(n_samples: int, source_rate: int, sample_rate: int) -> None:
    raise InvalidAudioError(
        f"clip has no samples at {sample_rate} Hz: its {n_samples} at {source_rate} Hz "
        "last less than one"
    )


class NotStreamableError(Exception):
    """Raised by :func:`decode_blocks` for data libsndfile cannot read through: formats only
    ffmpeg reads, or a read that fails part-way (which :func:`decode` hands to ffmpeg). The
    caller decodes ``source`` whole with :func:`decode`: the path of a file, or the bytes
    given or read from a pipe (which cannot be read again); never an answer to a user."""

    def __init__(self, source: bytes | Path) -> None:
        super().__init__("decode it whole")
        self.source = source


def decode_blocks(
    source: bytes | str | Path,
    *,
    sample_rate: int,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Generator[np.ndarray, None, None]:
    """:func:`decode` a block at a time, for recordings too long to hold whole: 1-D float32
    blocks at ``sample_rate`` that join into ``decode(...).samples``, exactly. A file is read
    as it is decoded, never held whole (a pipe or a device is read into memory first, as
    :func:`decode` reads it).

    The same limits and errors as :func:`decode`: those of the header before the first block,
    the length's as it is read, and those of the whole clip (no samples, non-finite, silent,
    less than one sample at ``sample_rate``) once every block has been read, before the last is
    given. Raises :class:`NotStreamableError` for data only :func:`decode` reads.
    """
    if sample_rate < 1:
        raise ParameterError(f"sample_rate={sample_rate} must be a positive integer")
    check_max_seconds(max_seconds)
    with _clip_data(source, max_seconds) as data:
        if not len(data):
            raise InvalidAudioError("clip is empty (0 bytes)")
        whole = data.path if isinstance(data, _FileBytes) else data
        with (
            _reader_failures(sniff_format(data[:16]), whole),
            _source_blocks(data, max_seconds) as (source_rate, energy, blocks),
        ):
            yield from _validated_resampled(blocks, energy, source_rate, sample_rate, max_seconds)


def _validated_resampled(
    blocks: Iterator[np.ndarray],
    channel_energy: np.ndarray,
    source_rate: int,
    sample_rate: int,
    max_seconds: float,
) -> Iterator[np.ndarray]:
    """``blocks`` of mono samples at ``source_rate`` resampled to ``sample_rate`` as they come,
    with soxr's streaming resampler (the same samples as :func:`_resample` of the whole), and
    checked as :func:`decode` checks the whole, in the same order, from running figures
    (:class:`_WholeClip`); ``channel_energy`` is filled in by the reader of ``blocks``."""
    resampler = (
        None
        if source_rate == sample_rate
        else soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32", quality="HQ")
    )
    whole = _WholeClip(source_rate)
    for block in blocks:
        whole.take(block)
        out = block if resampler is None else resampler.resample_chunk(block)
        whole.give(out)
        if len(out):
            yield out
    whole.check_source(channel_energy, max_seconds)
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        whole.give(tail)
        whole.check_resampled(sample_rate)
    whole.check_offset()
    if resampler is not None and len(tail):
        yield tail


class _WholeClip:
    """The figures :func:`decode`'s checks of a whole clip read, summed over its blocks as they
    pass through :func:`decode_blocks`: the source's mono blocks (``take``) and the resampled
    ones (``give``)."""

    def __init__(self, source_rate: int) -> None:
        self.rate = source_rate
        self.n_samples = self.non_finite = self.n_out = 0
        self.peak = self.energy = self.total = self.out_energy = self.swing = 0.0
        self.out_finite = True
        self.dc_block = max(1, round(DC_BLOCK_S * source_rate))
        self.rest = np.zeros(0, np.float32)  # samples after the last whole DC block

    def take(self, block: np.ndarray) -> None:
        with np.errstate(all="ignore"):  # NaN or overflow: check_source refuses such samples
            self._take(block)

    def _take(self, block: np.ndarray) -> None:
        self.n_samples += len(block)
        block_peak = float(np.max(np.abs(block))) if len(block) else 0.0  # NaN if one is
        if math.isfinite(block_peak):
            self.peak = max(self.peak, block_peak)
        else:
            self.non_finite += _non_finite(block)
        self.energy += float(np.dot(block, block))
        self.total += float(np.add.reduce(block))
        joined = np.concatenate([self.rest, block]) if len(self.rest) else block
        cut = len(joined) // self.dc_block * self.dc_block
        if cut:
            self.swing = max(self.swing, _loudest_swing(joined[:cut], self.dc_block))
        self.rest = joined[cut:].copy()

    def give(self, out: np.ndarray) -> None:
        self.n_out += len(out)
        if len(out):
            with np.errstate(over="ignore"):  # an overflow is check_resampled's to refuse
                self.out_energy += float(np.dot(out, out))
            self.out_finite = self.out_finite and bool(np.isfinite(np.maximum.reduce(np.abs(out))))

    def check_source(self, channel_energy: np.ndarray, max_seconds: float) -> None:
        """The reader's checks and :func:`_validated_magnitude`'s."""
        if len(channel_energy) > 1:
            _check_mixdown(self.n_samples, self.energy, channel_energy)
        if self.n_samples == 0:
            raise InvalidAudioError("clip has no samples")
        _check_length(self.n_samples, self.rate, max_seconds)
        _check_peak(math.inf if self.non_finite else self.peak, lambda: self.non_finite)

    def check_resampled(self, sample_rate: int) -> None:
        """:func:`_resample`'s check and :func:`_check_resampled`, every block given."""
        if self.n_out == 0:
            _refuse_unresampled(self.n_samples, self.rate, sample_rate)
        overflowed = self.peak > 1 and not self.out_finite
        _check_resampled(self.peak, overflowed, self.energy / self.n_samples,
                         self.out_energy / self.n_out, self.rate, sample_rate)  # fmt: skip

    def check_offset(self) -> None:
        """:func:`_check_offset`, on the source's samples."""
        if self.n_samples >= self.dc_block:
            mean = self.total / self.n_samples
            if abs(mean) >= NEGLIGIBLE_DC and math.isfinite(mean):  # overflowed: as decode
                _refuse_offset(mean, self.swing)


def max_decoded_values(max_seconds: float) -> int:
    """The most values (frames x channels) decoded for a clip of at most ``max_seconds``."""
    return int(max_seconds * VALUES_PER_SECOND)


# What a clip may be given as: a file's bytes, or its path.
ClipSource = bytes | bytearray | memoryview | str | os.PathLike[str]


def clip_source(source: object) -> bytes | Path:
    """``source`` as :func:`decode` takes it: the bytes of a ``bytes``, ``bytearray`` or
    ``memoryview``, or the :class:`Path` of a ``str`` or ``os.PathLike``; anything else is a
    :class:`ParameterError` naming its type."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        return as_path("clip", source)
    raise ParameterError(
        f"clip must be a file's bytes (bytes, bytearray, memoryview) or its path (str, "
        f"os.PathLike), not {type(source).__name__}"
    )


def read_clip_file(path: str | Path, max_seconds: float = DEFAULT_MAX_SECONDS) -> bytes:
    """A file's bytes, refused when no clip within the limits is as big: uncompressed 64-bit
    float at the decoded-value limit, plus room for the header. A file is refused by its size
    before reading; a pipe or device (``<(sox ...)``, ``/dev/zero``), whose size is unknown,
    once it has given more than that."""
    with Path(path).open("rb") as f:
        return _read_clip(f, max_seconds)


def _file_limit(max_seconds: float) -> int:
    return max_decoded_values(max_seconds) * 8 + (1 << 20)


def _check_file_size(size: int, max_seconds: float) -> None:
    limit = _file_limit(max_seconds)
    if size > limit:
        raise InvalidAudioError(
            f"file is {size} bytes; a clip of at most {max_seconds:g} s is under {limit} bytes"
        )


def _read_clip(f: BinaryIO, max_seconds: float) -> bytes:
    """:func:`read_clip_file` of the open file ``f``."""
    limit = _file_limit(max_seconds)
    size = os.fstat(f.fileno()).st_size
    _check_file_size(size, max_seconds)
    data = _read_at_most(f, limit + 1, first=size + 1 if size else READ_CHUNK)
    if len(data) > limit:
        raise InvalidAudioError(
            f"stream is over {limit} bytes; a clip of at most {max_seconds:g} s is under {limit} "
            "bytes"
        )
    return data


def _read_at_most(f: BinaryIO, most: int, *, first: int) -> bytes:
    """Up to ``most`` bytes of ``f``, asking ``first`` (a file's size and one more) and then
    ``READ_CHUNK`` at a time: a read of ``n`` bytes reserves ``n`` at once, and the limit of a
    timeline's hour is 2.8 GB, for a file of a few kilobytes or a pipe that gives little."""
    chunks, total, ask = [], 0, first
    while total < most:
        chunk = f.read(min(ask, most - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        ask = READ_CHUNK
    return b"".join(chunks)


def _read_any(data: bytes, sample_rate: int, max_seconds: float) -> tuple[np.ndarray, int, int]:
    """Samples, rate and channels from whichever reader takes ``data``.

    Any failure a reader has on malformed data that is not one of ours becomes a
    :class:`DecodeError`: a hostile file must never surface as a server error.
    """
    try:
        read = _read_pcm16_wav(data, max_seconds)
        if read is not None:
            return read
        try:
            return _read_soundfile(data, max_seconds)
        except sf.LibsndfileError:
            return _read_ffmpeg(data, sample_rate, max_seconds)
    except VoiceIdError:
        raise
    except Exception as exc:  # every reader has its own way of failing on bad bytes
        raise DecodeError(
            f"cannot decode {sniff_format(data)} data: {type(exc).__name__} in its reader"
        ) from exc


def _check_header(frames: int | None, rate: int, channels: int, max_seconds: float) -> None:
    """Refuse, before decoding, what the header says is too slow, too long or too big.

    ``frames`` is None when the container does not know its length (a stream); such data is
    held to the same limits while it is read in blocks.
    """
    if rate < MIN_SOURCE_RATE:
        raise InvalidAudioError(
            f"sample rate {rate} Hz is below the minimum of {MIN_SOURCE_RATE} Hz"
        )
    if frames is None:
        return
    if frames / rate > max_seconds:
        raise _too_long(frames / rate, max_seconds)
    _check_values(frames, channels, rate, max_seconds)


def _check_values(frames: int, channels: int, rate: int, max_seconds: float) -> None:
    limit = max_decoded_values(max_seconds)
    if frames * channels > limit:
        raise InvalidAudioError(
            f"clip holds {frames * channels} samples ({channels} channels at {rate} Hz); "
            f"at most {limit} are decoded"
        )


def _riff_chunks(data: bytes | _FileBytes) -> dict[bytes, tuple[int, int]]:
    """Start and end of each top-level chunk of a RIFF/WAVE file, the first of each id.

    A chunk is cut at the end of the data: a size of 0xFFFFFFFF (a stream of unknown length,
    as ``ffmpeg -f wav -`` writes) or a truncated file gives what is actually there.
    """
    chunks: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        chunks.setdefault(cid, (body, min(body + size, len(data))))
        pos = body + size + (size & 1)
    return chunks


def _pcm16_wav_layout(data: bytes | _FileBytes) -> tuple[int, int, int, int] | None:
    """Start of the samples, frames, channels and rate of a 16-bit PCM WAV; None for anything
    else (libsndfile's)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    chunks = _riff_chunks(data)
    if b"fmt " not in chunks or b"data" not in chunks:
        return None
    fmt_start, fmt_end = chunks[b"fmt "]
    if fmt_end - fmt_start < 16:
        return None
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[fmt_start : fmt_start + 16])
    if tag != 1 or bits != 16 or rate < 1 or channels < 1:
        return None  # float, 24-bit, WAVE_FORMAT_EXTENSIBLE or a damaged header
    start, end = chunks[b"data"]
    frames = (end - start) // (2 * channels)  # a cut-off last frame is dropped
    return start, frames, channels, rate


def is_pcm16_wav(data: bytes) -> bool:
    """Whether ``data`` is a 16-bit PCM WAV: read with numpy alone, no library and no
    subprocess, in time proportional to its size."""
    return _pcm16_wav_layout(data) is not None


def _read_pcm16_wav(data: bytes, max_seconds: float) -> tuple[np.ndarray, int, int] | None:
    """Samples, rate and channels of a 16-bit PCM WAV; None for anything else (libsndfile's)."""
    layout = _pcm16_wav_layout(data)
    if layout is None:
        return None
    start, frames, channels, rate = layout
    _check_header(frames, rate, channels, max_seconds)
    pcm = np.frombuffer(data, dtype="<i2", count=frames * channels, offset=start)
    # Scaled by 2**-15 as it is cast: exact, as the division by 32768 is, in one pass.
    samples = np.multiply(pcm.reshape(-1, channels), np.float32(1 / 32768), dtype=np.float32)
    mono = to_mono(samples)
    if channels > 1:
        _check_mixdown(len(mono), float(np.dot(mono, mono)), _channel_energy(samples))
    return mono, rate, channels


def _channel_energy(samples: np.ndarray) -> np.ndarray:
    """The (channels,) sum of squares of each channel of the (frames, channels) ``samples``:
    one strided BLAS dot product a channel, a tenth of the cost of ``einsum``'s."""
    return np.array([np.dot(channel, channel) for channel in samples.T], dtype=np.float64)


def _check_mixdown(frames: int, mixed: float, energy: np.ndarray) -> None:
    """Refuse channels that cancel when mixed to one (see ``CANCEL_DB``): ``mixed`` is the sum of
    squares of their mix, of ``frames`` frames, and ``energy`` each channel's. A silent channel
    beside a loud one gives a
    mix ``20 log10(channels)`` dB under the loud one's; a mix ``CANCEL_DB`` further down has
    lost what the channels held."""
    channels, loudest = len(energy), float(np.maximum.reduce(energy))
    silent = not loudest > frames * 10 ** (SILENCE_DBFS / 10)
    if silent or not math.isfinite(loudest):  # silent, NaN or far beyond full scale: told later
        return
    expected = loudest / channels**2  # what the loudest channel alone would give mixed
    if mixed >= expected * 10 ** (-CANCEL_DB / 10):
        return
    mix = (
        f"{10 * math.log10(loudest / mixed):.0f} dB under its loudest channel"
        if mixed
        else "silent"
    )
    raise InvalidAudioError(
        f"clip's {channels} channels cancel when mixed to one (the mix is {mix}): one of them "
        "is inverted; send one channel alone"
    )


_STDERR_LOCK = threading.Lock()
# What libmpg123 writes to the process's stderr about a damaged MP3, hundreds of lines a file.
_MPG123_NOTE = re.compile(rb"^(Note: |Warning: |\[src/libmpg123/)")


@contextlib.contextmanager
def _without_mpg123_notes() -> Iterator[None]:
    """Hold back libmpg123's notes, which it writes straight to file descriptor 2 whatever the
    log level: stderr goes to a temporary file meanwhile, and every other line written there
    in the meantime (by any thread) is passed on afterwards."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held if not _MPG123_NOTE.match(line)]
            if kept:
                os.write(2, b"".join(kept))


# libsndfile's length of a stream that does not know it (piped FLAC with total samples 0).
_UNKNOWN_FRAMES = 1 << 62


def _read_soundfile(data: bytes, max_seconds: float) -> tuple[np.ndarray, int, int]:
    """Decode in blocks, each mixed to mono at once, stopping at the limits: memory stays
    bounded whatever the header claims. (libsndfile cannot read a FLAC stream of unknown
    length from memory; it fails, and ffmpeg, whose output is bounded, reads it.)"""
    with _soundfile_blocks(data, max_seconds) as (rate, channels, energy, blocks):
        read = list(blocks)
    samples = np.concatenate(read) if read else np.zeros(0, np.float32)
    if channels > 1:
        _check_mixdown(len(samples), float(np.dot(samples, samples)), energy)
    return samples, rate, channels


@contextlib.contextmanager
def _soundfile_blocks(
    data: bytes | _FileBytes, max_seconds: float
) -> Iterator[tuple[int, int, np.ndarray, Iterator[np.ndarray]]]:
    """The rate and channels of ``data`` as libsndfile opens it, its header held to the limits,
    each channel's sum of squares so far (filled in as blocks are read: :func:`_read_blocks`)
    and its mono blocks as they are read, each counted against the limits; an MP3's notes from
    libmpg123 are held back (:func:`_without_mpg123_notes`) while it is opened and read."""
    quiet = _without_mpg123_notes if sniff_format(data[:16]) == "MP3" else contextlib.nullcontext
    with quiet():
        f = sf.SoundFile(data.file if isinstance(data, _FileBytes) else io.BytesIO(data))
    with f:
        rate, channels = int(f.samplerate), int(f.channels)
        # MP3 and some Ogg streams report no length: they are held to the limits block by block.
        known = 0 < f.frames < _UNKNOWN_FRAMES
        _check_header(int(f.frames) if known else None, rate, channels, max_seconds)
        energy = np.zeros(channels)
        yield rate, channels, energy, _read_blocks(f, quiet, max_seconds, energy)


def _read_blocks(
    f: sf.SoundFile,
    quiet: Callable[[], contextlib.AbstractContextManager[None]],
    max_seconds: float,
    energy: np.ndarray,
) -> Iterator[np.ndarray]:
    """``f``'s blocks mixed to mono, each counted against the limits, each channel's sum of
    squares added to ``energy`` (for :func:`_check_mixdown`) as it is read."""
    rate, channels = int(f.samplerate), int(f.channels)
    frames = 0
    while True:
        with quiet():
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(block):
            return
        if channels > 1:
            energy += _channel_energy(block)
        frames += len(block)
        if frames / rate > max_seconds:
            raise ClipTooLongError(
                f"clip is over {max_seconds:g} s long; the maximum is {max_seconds:g} s"
            )
        _check_values(frames, channels, rate, max_seconds)
        yield to_mono(block)


def _read_ffmpeg(data: bytes, sample_rate: int, max_seconds: float) -> tuple[np.ndarray, int, int]:
    kind = sniff_format(data)
    demuxer = _FFMPEG_DEMUXERS.get(kind)
    if demuxer is None:  # text, images, playlists: never handed to ffmpeg's probing
        raise DecodeError(f"cannot decode {kind} data: not a supported audio format")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:  # ffmpeg is named only where it might read the data
        if kind in _LIBSNDFILE_KINDS:
            raise DecodeError(
                f"cannot decode {kind} data: libsndfile cannot read it (a damaged file, or an "
                "encoding it lacks), and ffmpeg is not installed"
            )
        raise DecodeError(
            f"cannot decode {kind} data: it is not WAV, FLAC, OGG/Vorbis or MP3, "
            "and ffmpeg is not installed"
        )
    limit_s = max_seconds + 1  # decoding stops here: enough to tell that a clip is too long
    # A seekable file, not a pipe: an M4A whose index (moov) follows the audio, as most
    # encoders write it, fails to decode from a pipe once it outgrows ffmpeg's read buffer.
    # The file has no name (O_TMPFILE where the OS has it, else unlinked at once), so nothing is
    # left behind however the process ends; ffmpeg reads it through the descriptor it inherits,
    # with the demuxer forced and no protocol but ``file``, so its contents cannot name others.
    with tempfile.TemporaryFile(prefix="voiceid-") as source:
        source.write(data)
        source.flush()
        fd = source.fileno()
        cmd = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
            "-protocol_whitelist", "file", "-f", demuxer, "-i", f"file:/dev/fd/{fd}",
            "-t", f"{limit_s:g}", "-vn", "-ac", "1", "-ar", str(sample_rate),
            "-f", "f32le", "pipe:1",
        ]  # fmt: skip
        try:
            proc = subprocess.run(
                cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, pass_fds=(fd,)
            )  # on timeout, run kills ffmpeg and waits for it
        except subprocess.TimeoutExpired as exc:
            raise DecodeError(f"decoding {kind} data took over {FFMPEG_TIMEOUT_S:g} s") from exc
    samples = np.frombuffer(proc.stdout, dtype="<f4").copy()
    if proc.returncode != 0 or samples.size == 0:
        raise DecodeError(f"cannot decode {kind} data: not a supported audio format")
    if len(samples) >= limit_s * sample_rate:  # cut short, so the true length is unknown
        raise ClipTooLongError(f"clip is over {limit_s:g} s long; the maximum is {max_seconds:g} s")
    # ffmpeg decodes to the target rate and mono itself; the original layout is not reported.
    return samples, sample_rate, 1


class _FileBytes:
    """A regular file's bytes, read where they are sliced (``os.pread``) rather than held:
    what :func:`decode_blocks` reads a file through; libsndfile reads the file itself."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self.file, self.path = file, path
        self._size = os.fstat(file.fileno()).st_size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, where: slice) -> bytes:
        start, stop, _ = where.indices(self._size)
        return os.pread(self.file.fileno(), max(0, stop - start), start)


@contextlib.contextmanager
def _clip_data(source: bytes | str | Path, max_seconds: float) -> Iterator[bytes | _FileBytes]:
    """``source``'s bytes: given, or a regular file's as :class:`_FileBytes` (refused by its size
    as :func:`read_clip_file` refuses it), or a pipe's or device's read whole."""
    if not isinstance(source, str | Path):
        yield source
        return
    path = Path(source)
    with path.open("rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            yield _read_clip(f, max_seconds)
            return
        _check_file_size(os.fstat(f.fileno()).st_size, max_seconds)
        yield _FileBytes(f, path)


@contextlib.contextmanager
def _reader_failures(kind: str, whole: bytes | Path) -> Iterator[None]:
    """A reader's failures on malformed data as :func:`_read_any` has them: libsndfile's (which
    :func:`decode` hands to ffmpeg) as :class:`NotStreamableError` for ``whole`` to be decoded,
    any other that is not one of ours as a :class:`DecodeError`."""
    try:
        yield
    except VoiceIdError:
        raise
    except sf.LibsndfileError as exc:
        raise NotStreamableError(whole) from exc
    except Exception as exc:  # every reader has its own way of failing on bad bytes
        raise DecodeError(f"cannot decode {kind} data: {type(exc).__name__} in its reader") from exc


@contextlib.contextmanager
def _source_blocks(
    data: bytes | _FileBytes, max_seconds: float
) -> Iterator[tuple[int, np.ndarray, Iterator[np.ndarray]]]:
    """The rate of ``data``, each channel's sum of squares so far (filled in as the blocks are
    read) and its mono blocks at that rate, from the reader :func:`_read_any` would use, held
    to the same limits."""
    layout = _pcm16_wav_layout(data)
    if layout is None:
        with _soundfile_blocks(data, max_seconds) as (rate, _, energy, blocks):
            yield rate, energy, blocks
        return
    start, frames, channels, rate = layout
    _check_header(frames, rate, channels, max_seconds)
    energy = np.zeros(channels)
    yield rate, energy, _pcm16_blocks(data, start, frames, channels, energy)


def _pcm16_blocks(
    data: bytes | _FileBytes, start: int, frames: int, channels: int, energy: np.ndarray
) -> Iterator[np.ndarray]:
    """:func:`_read_pcm16_wav`'s samples, ``BLOCK_FRAMES`` frames at a time, each channel's sum
    of squares added to ``energy`` as they are read."""
    frame_bytes = 2 * channels
    for first in range(0, frames, BLOCK_FRAMES):
        count = min(BLOCK_FRAMES, frames - first)
        at = start + first * frame_bytes
        pcm = np.frombuffer(data[at : at + count * frame_bytes], dtype="<i2")
        samples = np.multiply(pcm.reshape(-1, channels), np.float32(1 / 32768), dtype=np.float32)
        if channels > 1:
            energy += _channel_energy(samples)
        yield to_mono(samples)
