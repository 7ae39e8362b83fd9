"""Hostile bytes given to decode: always one of our errors, quickly, and nothing else read."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import audio
from pipeline.audio import decode
from pipeline.config import FeatureConfig
from pipeline.errors import AudioError, DecodeError, InvalidAudioError
from pipeline.features import histogram
from tests.security import hostile
from tests.signals import SR, encode, tone


def _error(data: bytes, max_seconds: float = 60.0) -> AudioError:
    with pytest.raises(AudioError) as caught:
        decode(data, sample_rate=SR, max_seconds=max_seconds)
    return caught.value


@pytest.mark.requires_ffmpeg  # ffmpeg is the last reader tried; without it the words differ
@pytest.mark.parametrize("data", [hostile.riff_junk(), hostile.riff_oversized_chunk()])
def test_a_damaged_riff_is_a_decode_error(data: bytes) -> None:
    error = _error(data)

    assert isinstance(error, DecodeError)
    assert str(error) == hostile.DAMAGED_WAV_BY_FFMPEG


@pytest.mark.parametrize("data", [hostile.riff_junk(), hostile.riff_oversized_chunk()])
def test_a_damaged_riff_without_ffmpeg_says_libsndfile_cannot_read_it(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.audio.shutil.which", lambda name: None)

    error = _error(data)

    assert isinstance(error, DecodeError)
    assert str(error) == hostile.DAMAGED_WAV_WITHOUT_FFMPEG


def test_finite_samples_near_the_float_maximum_are_refused_by_name() -> None:
    clip = decode(hostile.float_wav_near_max(), sample_rate=SR)
    with pytest.raises(InvalidAudioError, match=r"peak sample 3e\+38 is far beyond full scale"):
        histogram(clip.samples, FeatureConfig())


def test_a_flac_bomb_is_refused_from_its_header_at_once() -> None:
    started = time.perf_counter()
    error = _error(hostile.flac_bomb())

    assert time.perf_counter() - started < 0.5
    assert str(error) == (
        "clip holds 309325200 samples (8 channels at 655350 Hz); at most 5760000 are decoded"
    )


def test_a_bomb_within_the_duration_limit_is_refused_by_its_decoded_size() -> None:
    error = _error(hostile.flac_bomb(seconds=5.0))

    assert str(error) == (
        "clip holds 26214000 samples (8 channels at 655350 Hz); at most 5760000 are decoded"
    )


@pytest.mark.requires_ffmpeg  # libsndfile cannot read FLAC of unknown length from memory
def test_a_stream_of_unknown_length_is_held_to_the_length_limit() -> None:
    channels = np.zeros((SR // 2, 8), np.float32) + tone(220, seconds=0.5)[:, None]

    error = _error(hostile.flac_stream(channels), max_seconds=0.4)

    assert str(error) == "clip is 0.50 s long; the maximum is 0.4 s"


def test_a_wav_stream_of_unknown_length_is_read_as_far_as_it_goes() -> None:
    clip = decode(hostile.wav_stream(1.0), sample_rate=SR)

    assert clip.samples.shape == (SR,)


@pytest.mark.requires_ffmpeg
def test_a_piped_flac_without_a_total_is_read_as_far_as_it_goes() -> None:
    clip = decode(hostile.flac_stream(tone(220)), sample_rate=SR)

    np.testing.assert_allclose(clip.samples, tone(220), atol=1e-4)


@pytest.mark.parametrize("rate", [100, 1000, 7999])
def test_a_clip_below_telephone_rate_is_refused_with_its_rate(rate: int) -> None:
    error = _error(encode(tone(20, sample_rate=rate), rate))

    assert str(error) == f"sample rate {rate} Hz is below the minimum of 8000 Hz"


def test_a_file_too_big_for_any_clip_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    with path.open("wb") as f:
        f.truncate(8 * 96_000 + (1 << 20) + 1)

    with pytest.raises(InvalidAudioError) as caught:
        decode(path, sample_rate=SR, max_seconds=1.0)

    assert str(caught.value) == (
        "file is 1816577 bytes; a clip of at most 1 s is under 1816576 bytes"
    )


def test_an_endless_device_is_read_only_as_far_as_the_limit() -> None:
    with pytest.raises(InvalidAudioError) as caught:
        decode(Path("/dev/zero"), sample_rate=SR, max_seconds=1.0)

    assert str(caught.value) == (
        "stream is over 1816576 bytes; a clip of at most 1 s is under 1816576 bytes"
    )


class _Asked:
    """An open file that records the sizes read of it."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.sizes = file, list[int]()

    def fileno(self) -> int:
        return self.file.fileno()

    def read(self, size: int) -> bytes:
        self.sizes.append(size)
        return self.file.read(size)


def test_a_file_is_read_asking_for_its_size_not_the_limit(tmp_path: Path) -> None:
    """A read of n bytes reserves n at once: the limit of a 60 s clip is 47 MB."""
    wav = encode(tone(seconds=0.5))
    (tmp_path / "clip.wav").write_bytes(wav)

    with (tmp_path / "clip.wav").open("rb") as f:
        asked = _Asked(f)
        data = audio._read_clip(asked, 60.0)  # type: ignore[arg-type]

    assert (data, asked.sizes) == (wav, [len(wav) + 1, audio.READ_CHUNK])


def test_a_pipe_is_read_a_chunk_at_a_time_up_to_the_limit() -> None:
    wav = encode(tone(seconds=0.5))
    read_end, write_end = os.pipe()
    os.write(write_end, wav)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        asked = _Asked(f)
        data = audio._read_clip(asked, 60.0)  # type: ignore[arg-type]

    assert (data, asked.sizes) == (wav, [audio.READ_CHUNK, audio.READ_CHUNK])


def test_a_pipe_is_read_as_a_clip(tmp_path: Path) -> None:
    wav = encode(tone(seconds=0.5))
    read_end, write_end = os.pipe()
    os.write(write_end, wav)  # under a pipe's buffer: no reader needed yet
    os.close(write_end)
    try:
        clip = decode(Path(f"/dev/fd/{read_end}"), sample_rate=SR)
    finally:
        os.close(read_end)

    assert clip.samples.shape == (SR // 2,)


@pytest.mark.requires_ffmpeg
@pytest.mark.parametrize(
    "playlist",
    [
        hostile.hls_playlist("/etc/passwd"),
        hostile.hls_playlist("../../etc/hostname"),
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
        b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/live.ts\n",
    ],
)
def test_playlists_never_reach_ffmpeg(playlist: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ffmpeg(*args: object, **kwargs: object) -> None:
        raise AssertionError("ffmpeg was run")

    monkeypatch.setattr("pipeline.audio.subprocess.run", no_ffmpeg)

    error = _error(playlist)

    assert isinstance(error, DecodeError)
    assert str(error).endswith("data: not a supported audio format")


@pytest.mark.requires_ffmpeg
def test_ffmpeg_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    _error(b"\x00\x00\x00\x20ftypM4A " + bytes(64))

    assert list(tmp_path.iterdir()) == []


# Fuzzing: bounded by example count and time, so that CI stays quick.

_SEEDS = [
    encode(tone(220, seconds=0.3)),
    encode(tone(220, seconds=0.3), subtype="FLOAT"),
    encode(tone(220, seconds=0.3), fmt="FLAC"),
    hostile.wav_stream(0.3),
]


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 4000), st.binary(min_size=1, max_size=8)), max_size=6),
    cut=st.integers(0, 20_000),
)
def test_fuzzed_audio_gives_a_clip_or_one_of_our_errors(
    seed: bytes, edits: list[tuple[int, bytes]], cut: int
) -> None:
    data = bytearray(seed)
    for at, chunk in edits:
        data[at : at + len(chunk)] = chunk
    try:
        clip = decode(bytes(data[: len(data) - cut] if cut < len(data) else data), sample_rate=SR)
    except AudioError:
        return
    assert clip.samples.dtype == np.float32
    assert clip.duration_s <= 60.0


def _damaged_mp3() -> bytes:
    data = bytearray(encode(tone(220), fmt="MP3"))
    rng = np.random.default_rng(0)
    for at in rng.integers(100, len(data), 200):
        data[at] = int(rng.integers(0, 256))
    return bytes(data)


def test_libmpg123_notes_on_a_damaged_mp3_are_held_back(capfd: pytest.CaptureFixture[str]) -> None:
    with contextlib.suppress(AudioError):  # decoded or refused: either way, quietly
        decode(_damaged_mp3(), sample_rate=SR)

    assert capfd.readouterr().err == ""


def test_other_stderr_output_meanwhile_is_passed_on(capfd: pytest.CaptureFixture[str]) -> None:
    with audio._without_mpg123_notes():
        os.write(2, b"Note: Trying to resync...\nworker 2 says hello\n")

    assert capfd.readouterr().err == "worker 2 says hello\n"
