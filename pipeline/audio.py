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
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    "check_max_seconds",
    "clip_source",
    "decode",
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
# Channels that, mixed to one, give this many dB less than the loudest would alone cancel:
# one of them is inverted (a balanced cable or a stereo effect), and the mix loses the voice.
CANCEL_DB = 20.0
# Decoded values (frames x channels) allowed per second of the longest clip: 48 kHz stereo.
# A header that promises more is refused before decoding (a small FLAC can hold gigabytes).
VALUES_PER_SECOND = 2 * 48_000
BLOCK_FRAMES = 1 << 16  # libsndfile reads this many frames at a time, mixed to mono at once
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
    (b"{", 0, "JSON/text"),
)


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
    return "unknown"


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
    duration = len(samples) / sample_rate
    if duration > max_seconds:
        raise ClipTooLongError(f"clip is {duration:.2f} s long; the maximum is {max_seconds:g} s")
    magnitude = np.abs(samples)
    at = int(np.argmax(magnitude))  # the first NaN when any sample is one
    peak = float(magnitude[at])  # NaN or infinite when any sample is: counted then
    if not math.isfinite(peak):
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise InvalidAudioError(f"clip has {bad} non-finite samples (NaN or infinity)")
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < SILENCE_DBFS:
        shown = "-inf" if peak == 0 else f"{peak_db:.1f}"
        raise InvalidAudioError(
            f"clip is silent: peak level {shown} dBFS is below {SILENCE_DBFS:g} dBFS"
        )
    return magnitude, at


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
        _check_resampled(samples, float(magnitude[at]), resampled, source_rate, sample_rate)
    _check_offset(samples, source_rate)  # on the source: resampling rings at a constant's ends
    return Clip(resampled, sample_rate, source_rate, channels, clipped, companded)


def _check_resampled(
    source: np.ndarray, peak: float, resampled: np.ndarray, source_rate: int, sample_rate: int
) -> None:
    """Refuse a clip that resampling overflowed (finite samples far beyond full scale, ``peak``
    the source's) or that kept less than ``MIN_KEPT_DB`` of its energy: its sound lay above the
    band a model at ``sample_rate`` hears, and what is left is the resampler's own residue."""
    if peak > 1 and not np.isfinite(np.maximum.reduce(np.abs(resampled))):
        raise InvalidAudioError(
            f"clip overflows when resampled from {source_rate} Hz: its peak sample {peak:.3g} "
            "is far beyond full scale (1.0)"
        )
    before = float(np.dot(source, source)) / len(source)
    after = float(np.dot(resampled, resampled)) / len(resampled)
    if not (math.isfinite(before) and before > 0):  # overflowed: the features refuse it
        return
    kept_db = 10 * math.log10(after / before) if after > 0 else -math.inf
    if kept_db < MIN_KEPT_DB:
        raise InvalidAudioError(
            f"clip holds almost no sound below {sample_rate / 2:g} Hz: resampled from "
            f"{source_rate} Hz to {sample_rate} Hz it keeps {kept_db:.0f} dB of its energy, "
            f"under the {MIN_KEPT_DB:g} dB needed"
        )


def _check_offset(samples: np.ndarray, sample_rate: int) -> None:
    """Refuse a clip whose mean lies further from zero than its loudest ``DC_BLOCK_S`` swings
    about that block's own mean (see ``DC_BLOCK_S``): the offset, not the voice, fills its
    spectrum's lowest bins, and it would be measured as a background louder than the speech."""
    block = max(1, round(DC_BLOCK_S * sample_rate))
    if len(samples) < block:  # too short to tell an offset from a sound: it holds no speech
        return
    mean = float(np.add.reduce(samples)) / len(samples)  # float32's pairwise sum
    if abs(mean) < NEGLIGIBLE_DC:  # most recordings
        return
    swing = _loudest_swing(samples, block)
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
        raise InvalidAudioError(
            f"clip has no samples at {sample_rate} Hz: its {len(samples)} at {source_rate} Hz "
            "last less than one"
        )
    return resampled.astype(np.float32, copy=False)


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
    limit = max_decoded_values(max_seconds) * 8 + (1 << 20)
    with Path(path).open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise InvalidAudioError(
                f"file is {size} bytes; a clip of at most {max_seconds:g} s is under {limit} bytes"
            )
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InvalidAudioError(
            f"stream is over {limit} bytes; a clip of at most {max_seconds:g} s is under {limit} "
            "bytes"
        )
    return data


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
            if sniff_format(data) != "MP3":
                return _read_soundfile(data, max_seconds)
            with _without_mpg123_notes():
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
        raise ClipTooLongError(
            f"clip is {frames / rate:.2f} s long; the maximum is {max_seconds:g} s"
        )
    _check_values(frames, channels, rate, max_seconds)


def _check_values(frames: int, channels: int, rate: int, max_seconds: float) -> None:
    limit = max_decoded_values(max_seconds)
    if frames * channels > limit:
        raise InvalidAudioError(
            f"clip holds {frames * channels} samples ({channels} channels at {rate} Hz); "
            f"at most {limit} are decoded"
        )


def _riff_chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
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


def _pcm16_wav_layout(data: bytes) -> tuple[int, int, int, int] | None:
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
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, fmt_start)
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
        _check_mixdown(mono, _channel_energy(samples))
    return mono, rate, channels


def _channel_energy(samples: np.ndarray) -> np.ndarray:
    """The (channels,) sum of squares of each channel of the (frames, channels) ``samples``:
    one strided BLAS dot product a channel, a tenth of the cost of ``einsum``'s."""
    return np.array([np.dot(channel, channel) for channel in samples.T], dtype=np.float64)


def _check_mixdown(mono: np.ndarray, energy: np.ndarray) -> None:
    """Refuse channels that cancel when mixed to one (see ``CANCEL_DB``): ``mono`` is their mix
    and ``energy`` each channel's sum of squares. A silent channel beside a loud one gives a
    mix ``20 log10(channels)`` dB under the loud one's; a mix ``CANCEL_DB`` further down has
    lost what the channels held."""
    channels, loudest = len(energy), float(np.maximum.reduce(energy))
    silent = not loudest > len(mono) * 10 ** (SILENCE_DBFS / 10)
    if silent or not math.isfinite(loudest):  # silent, NaN or far beyond full scale: told later
        return
    mixed = float(np.dot(mono, mono))
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
    with sf.SoundFile(io.BytesIO(data)) as f:
        rate, channels = int(f.samplerate), int(f.channels)
        # MP3 and some Ogg streams report no length: they are held to the limits block by block.
        known = 0 < f.frames < _UNKNOWN_FRAMES
        _check_header(int(f.frames) if known else None, rate, channels, max_seconds)
        blocks, frames = [], 0
        energy = np.zeros(channels)
        while True:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            if not len(block):
                break
            if channels > 1:
                energy += _channel_energy(block)
            frames += len(block)
            if frames / rate > max_seconds:
                raise ClipTooLongError(
                    f"clip is over {max_seconds:g} s long; the maximum is {max_seconds:g} s"
                )
            _check_values(frames, channels, rate, max_seconds)
            blocks.append(to_mono(block))
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if channels > 1:
        _check_mixdown(samples, energy)
    return samples, rate, channels


def _read_ffmpeg(data: bytes, sample_rate: int, max_seconds: float) -> tuple[np.ndarray, int, int]:
    kind = sniff_format(data)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise DecodeError(
            f"cannot decode {kind} data: it is not WAV, FLAC, OGG/Vorbis or MP3, "
            "and ffmpeg is not installed"
        )
    demuxer = _FFMPEG_DEMUXERS.get(kind)
    if demuxer is None:  # text, images, playlists: never handed to ffmpeg's probing
        raise DecodeError(f"cannot decode {kind} data: not a supported audio format")
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
