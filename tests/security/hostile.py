"""Hostile uploads, each built from a few bytes: what an attacker would send a public server."""

from __future__ import annotations

import shutil
import struct

import numpy as np

from tests.signals import SR, encode, tone

__all__ = [
    "DAMAGED_WAV",
    "DAMAGED_WAV_BY_FFMPEG",
    "DAMAGED_WAV_WITHOUT_FFMPEG",
    "flac_bomb",
    "flac_stream",
    "float_wav_near_max",
    "hls_playlist",
    "riff_junk",
    "riff_oversized_chunk",
    "wav_stream",
]

# Why a damaged RIFF is refused: ffmpeg, the last reader, finds no audio in it; without ffmpeg,
# libsndfile's failure is the last word (tests/security/test_decode.py holds both exactly).
DAMAGED_WAV_BY_FFMPEG = "cannot decode WAV data: not a supported audio format"
DAMAGED_WAV_WITHOUT_FFMPEG = (
    "cannot decode WAV data: libsndfile cannot read it (a damaged file, or an encoding it "
    "lacks), and ffmpeg is not installed"
)
DAMAGED_WAV = DAMAGED_WAV_BY_FFMPEG if shutil.which("ffmpeg") else DAMAGED_WAV_WITHOUT_FFMPEG

_STREAMINFO = 8  # offset of FLAC's STREAMINFO block: "fLaC" and a 4-byte block header


def riff_junk() -> bytes:
    """A ``RIFF....WAVE`` header followed by bytes that are no chunks."""
    return b"RIFF\x24\x00\x00\x00WAVE" + b"\x00junkjunkjunkjunk" * 3


def riff_oversized_chunk() -> bytes:
    """28 bytes of RIFF whose fmt chunk claims 2 GB."""
    return b"RIFF\x14\x00\x00\x00WAVEfmt \xff\xff\xff\x7f\x01\x00\x01\x00\x80>\x00\x00"


def float_wav_near_max(amplitude: float = 3e38) -> bytes:
    """A float WAV of finite samples near the float32 maximum (3.4e38)."""
    noise = np.random.default_rng(0).uniform(-1, 1, SR)
    return encode((noise * amplitude).astype(np.float32), subtype="FLOAT")


def wav_stream(seconds: float = 1.0) -> bytes:
    """16-bit PCM WAV as ``ffmpeg -f wav -`` writes to a pipe: RIFF and data sizes 0xFFFFFFFF."""
    data = bytearray(encode(tone(220, seconds=seconds)))
    data[4:8] = b"\xff\xff\xff\xff"
    data[40:44] = b"\xff\xff\xff\xff"  # the data chunk's size (after a 16-byte fmt chunk)
    return bytes(data)


def _with_total_samples(flac: bytes, total: int) -> bytes:
    """``flac`` with STREAMINFO's 36-bit total sample count set to ``total``."""
    data = bytearray(flac)
    at = _STREAMINFO + 13  # low 4 bits of this byte, then 4 more bytes
    data[at] = (data[at] & 0xF0) | (total >> 32)
    data[at + 1 : at + 5] = struct.pack(">I", total & 0xFFFFFFFF)
    return bytes(data)


def flac_stream(samples: np.ndarray, sample_rate: int = SR) -> bytes:
    """FLAC as an encoder writes it to a pipe: total samples 0 (unknown)."""
    return _with_total_samples(encode(samples, sample_rate, fmt="FLAC"), 0)


def flac_bomb(seconds: float = 59.0, channels: int = 8, sample_rate: int = 655_350) -> bytes:
    """A tiny FLAC whose header promises ``seconds`` of ``channels`` at ``sample_rate``: the
    decompression bomb, minus the minutes of encoding (its frames hold only a moment)."""
    moment = np.zeros((sample_rate // 100, channels), np.float32)
    return _with_total_samples(encode(moment, sample_rate, fmt="FLAC"), int(seconds * sample_rate))


def hls_playlist(target: str) -> bytes:
    """An HLS playlist that asks ffmpeg to read ``target`` from the server's disk."""
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{target}\n#EXT-X-ENDLIST\n".encode()
