"""Decoding: bytes or a path in, mono float32 at the configured rate out.

The one place where files and bytes become arrays; training, evaluation and the service all come
through here. WAV, FLAC, OGG/Vorbis and MP3 are read by libsndfile (soundfile); anything else
(m4a, webm/opus, ...) goes through ffmpeg when it is installed. Plain 16-bit PCM WAV, what
browsers and most clients send, is read by the standard library's ``wave`` first: the same
samples as libsndfile (tested equal) in a fifth of the time, which matters per request.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from pipeline.errors import DecodeError, InvalidAudioError, ParameterError

__all__ = [
    "DEFAULT_MAX_SECONDS",
    "SILENCE_DBFS",
    "Clip",
    "decode",
    "sniff_format",
    "to_mono",
    "validate_waveform",
]

DEFAULT_MAX_SECONDS = 60.0  # longest clip accepted, seconds
SILENCE_DBFS = -80.0  # a clip whose peak is below this level is silent (16-bit LSB: -90)
FFMPEG_TIMEOUT_S = 30.0

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
    """A decoded clip: ``samples`` is 1-D float32 in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    channels: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def sniff_format(data: bytes) -> str:
    """A human name for the container in ``data`` from its leading bytes ("unknown" if none)."""
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return name
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


def validate_waveform(samples: np.ndarray, sample_rate: int, *, max_seconds: float) -> None:
    """Raise :class:`InvalidAudioError` for an empty, too long, non-finite or silent waveform."""
    if samples.size == 0:
        raise InvalidAudioError("clip has no samples")
    duration = len(samples) / sample_rate
    if duration > max_seconds:
        raise InvalidAudioError(f"clip is {duration:.2f} s long; the maximum is {max_seconds:g} s")
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        raise InvalidAudioError(f"clip has {bad} non-finite samples (NaN or infinity)")
    peak = float(np.max(np.abs(samples)))
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < SILENCE_DBFS:
        shown = "-inf" if peak == 0 else f"{peak_db:.1f}"
        raise InvalidAudioError(
            f"clip is silent: peak level {shown} dBFS is below {SILENCE_DBFS:g} dBFS"
        )


def decode(
    source: bytes | str | Path,
    *,
    sample_rate: int,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Clip:
    """Decode ``source`` (file bytes or a path) to a validated mono float32 clip at ``sample_rate``.

    Raises :class:`DecodeError` when the data is not audio we can read and
    :class:`InvalidAudioError` when it is empty, too long, non-finite or silent.
    """
    if sample_rate < 1:
        raise ParameterError(f"sample_rate={sample_rate} must be a positive integer")
    if not max_seconds > 0:
        raise ParameterError(f"max_seconds={max_seconds} must be positive")
    data = Path(source).read_bytes() if isinstance(source, str | Path) else source
    if not data:
        raise InvalidAudioError("clip is empty (0 bytes)")
    try:
        samples, source_rate, channels = _read_pcm16_wav(data, max_seconds) or _read_soundfile(
            data, max_seconds
        )
    except sf.LibsndfileError:
        samples, source_rate, channels = _read_ffmpeg(data, sample_rate, max_seconds)
    validate_waveform(samples, source_rate, max_seconds=max_seconds)
    if source_rate != sample_rate:
        samples = soxr.resample(samples, source_rate, sample_rate, quality="HQ")
        samples = samples.astype(np.float32, copy=False)
    return Clip(samples, sample_rate, source_rate, channels)


def _check_length(frames: int, rate: int, max_seconds: float) -> None:
    if frames > 0 and frames / rate > max_seconds:
        raise InvalidAudioError(
            f"clip is {frames / rate:.2f} s long; the maximum is {max_seconds:g} s"
        )


def _read_pcm16_wav(data: bytes, max_seconds: float) -> tuple[np.ndarray, int, int] | None:
    """Samples, rate and channels of a 16-bit PCM WAV; None for anything else (soundfile's job)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    try:
        with wave.open(io.BytesIO(data)) as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            if width != 2 or rate < 1 or channels < 1:
                return None
            _check_length(w.getnframes(), rate, max_seconds)
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return None  # float, 24-bit, WAVE_FORMAT_EXTENSIBLE or a damaged header
    usable = len(raw) // (2 * channels) * 2 * channels  # a cut-off last frame is dropped
    pcm = np.frombuffer(raw, dtype="<i2", count=usable // 2).reshape(-1, channels)
    return to_mono(pcm.astype(np.float32) / np.float32(32768)), rate, channels


def _read_soundfile(data: bytes, max_seconds: float) -> tuple[np.ndarray, int, int]:
    with sf.SoundFile(io.BytesIO(data)) as f:
        rate, channels = int(f.samplerate), int(f.channels)
        # MP3 and some Ogg streams report no length; those are checked after decoding.
        _check_length(f.frames, rate, max_seconds)
        frames = f.read(dtype="float32", always_2d=True)
    return to_mono(frames), rate, channels


def _read_ffmpeg(data: bytes, sample_rate: int, max_seconds: float) -> tuple[np.ndarray, int, int]:
    kind = sniff_format(data)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise DecodeError(
            f"cannot decode {kind} data: it is not WAV, FLAC, OGG/Vorbis or MP3, "
            "and ffmpeg is not installed"
        )
    limit_s = max_seconds + 1  # decoding stops here: enough to tell that a clip is too long
    # A seekable file, not a pipe: an M4A whose index (moov) follows the audio, as most
    # encoders write it, fails to decode from a pipe once it outgrows ffmpeg's read buffer.
    with tempfile.NamedTemporaryFile(prefix="voiceid-") as source:
        source.write(data)
        source.flush()
        cmd = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", source.name,
            "-t", f"{limit_s:g}", "-vn", "-ac", "1", "-ar", str(sample_rate),
            "-f", "f32le", "pipe:1",
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise DecodeError(f"decoding {kind} data took over {FFMPEG_TIMEOUT_S:g} s") from exc
    samples = np.frombuffer(proc.stdout, dtype="<f4").copy()
    if proc.returncode != 0 or samples.size == 0:
        raise DecodeError(f"cannot decode {kind} data: not a supported audio format")
    if len(samples) >= limit_s * sample_rate:  # cut short, so the true length is unknown
        raise InvalidAudioError(
            f"clip is over {limit_s:g} s long; the maximum is {max_seconds:g} s"
        )
    # ffmpeg decodes to the target rate and mono itself; the original layout is not reported.
    return samples, sample_rate, 1
