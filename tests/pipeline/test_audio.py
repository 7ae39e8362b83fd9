"""Tests of decoding: formats, bytes and paths, downmix, resampling and every refusal."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import (
    BLOCK_FRAMES,
    MAX_SECONDS_LIMIT,
    NotStreamableError,
    decode,
    decode_blocks,
    is_pcm16_wav,
    sniff_format,
    to_mono,
    validate_waveform,
)
from pipeline.config import FeatureConfig
from pipeline.errors import ClipTooLongError, DecodeError, InvalidAudioError, ParameterError
from pipeline.features import histogram
from pipeline.quality.measures import companded_levels
from tests.signals import PNG_BYTES, SR, encode, harmonics, peak_hz, tone

LIBSNDFILE_FORMATS = [
    "WAV",
    "FLAC",
    "OGG",
    pytest.param(
        "MP3",
        marks=pytest.mark.skipif(
            "MP3" not in sf.available_formats(),
            reason=f"libsndfile {sf.__libsndfile_version__} cannot write MP3 (needs >= 1.1)",
        ),
    ),
]
EXTENSIONS = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}
M4A_HEADER = b"\x00\x00\x00\x20ftypM4A " + bytes(200)  # leading bytes only, no audio
NOT_LIBSNDFILE = "it is not WAV, FLAC, OGG/Vorbis or MP3, and ffmpeg is not installed"


def _ffmpeg_encode(tmp: Path, name: str, codec: list[str], seconds: float = 1.0) -> bytes:
    """A 440 Hz tone at 44.1 kHz encoded by the ffmpeg binary into ``name``."""
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"  # the tests that get here require it
    source, target = tmp / f"{name}.wav", tmp / name
    source.write_bytes(encode(tone(440, seconds=seconds, sample_rate=44100), 44100))
    cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *codec, str(target)]
    subprocess.run(cmd, check=True, capture_output=True)
    return target.read_bytes()


@pytest.fixture(scope="module")
def m4a_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _ffmpeg_encode(tmp_path_factory.mktemp("m4a"), "tone.m4a", ["-c:a", "aac"])


@pytest.fixture(scope="module")
def webm_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _ffmpeg_encode(tmp_path_factory.mktemp("webm"), "tone.webm", ["-c:a", "libopus"])


@pytest.fixture(scope="module")
def long_m4a_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """10 s of AAC (about 90 kB) with its index (moov) after the audio, as ffmpeg writes it."""
    data = _ffmpeg_encode(tmp_path_factory.mktemp("m4a"), "long.m4a", ["-c:a", "aac"], 10.0)
    assert data.find(b"moov") > data.find(b"mdat") > 0
    return data


def _decode_error(
    data: bytes, error: type[Exception] = InvalidAudioError, max_seconds: float = 60.0
) -> str:
    """The message of the ``error`` (that exact class) that decoding ``data`` raises."""
    with pytest.raises(error) as caught:
        decode(data, sample_rate=SR, max_seconds=max_seconds)
    assert type(caught.value) is error
    return str(caught.value)


# Formats, bytes and paths


@pytest.mark.parametrize("fmt", LIBSNDFILE_FORMATS)
def test_decodes_libsndfile_formats_from_bytes(fmt: str) -> None:
    clip = decode(encode(tone(440), fmt=fmt), sample_rate=SR)

    assert (clip.sample_rate, clip.source_rate, clip.channels) == (SR, SR, 1)
    assert clip.samples.dtype == np.float32
    assert clip.samples.shape == (SR,)
    assert clip.duration_s == 1.0
    assert peak_hz(clip.samples, SR) == 440.0


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_lossless_formats_give_back_the_samples(fmt: str) -> None:
    clip = decode(encode(tone(440), fmt=fmt, subtype="PCM_16"), sample_rate=SR)

    np.testing.assert_allclose(clip.samples, tone(440), atol=1 / 32768)


@pytest.mark.parametrize("fmt", LIBSNDFILE_FORMATS)
def test_a_path_decodes_like_its_bytes(tmp_path: Path, fmt: str) -> None:
    data = encode(tone(440), fmt=fmt)
    path = tmp_path / f"tone.{EXTENSIONS[fmt]}"
    path.write_bytes(data)

    from_bytes = decode(data, sample_rate=SR)
    for source in (path, str(path)):
        np.testing.assert_array_equal(decode(source, sample_rate=SR).samples, from_bytes.samples)


@pytest.mark.requires_ffmpeg
@pytest.mark.parametrize("fixture", ["m4a_bytes", "webm_bytes"])
def test_decodes_formats_only_ffmpeg_reads(request: pytest.FixtureRequest, fixture: str) -> None:
    data: bytes = request.getfixturevalue(fixture)
    with pytest.raises(sf.LibsndfileError):
        sf.SoundFile(io.BytesIO(data))  # the premise: libsndfile cannot read it

    clip = decode(data, sample_rate=SR)

    # ffmpeg downmixes and resamples itself, so the clip reports the target rate and one channel.
    assert (clip.sample_rate, clip.source_rate, clip.channels) == (SR, SR, 1)
    assert clip.duration_s == pytest.approx(1.0, abs=0.05)  # encoder padding
    assert peak_hz(clip.samples, SR) == pytest.approx(440.0, abs=2.0)


@pytest.mark.requires_ffmpeg
def test_decodes_an_m4a_whose_index_follows_the_audio(long_m4a_bytes: bytes) -> None:
    clip = decode(long_m4a_bytes, sample_rate=SR)

    assert clip.duration_s == pytest.approx(10.0, abs=0.05)


@pytest.mark.requires_ffmpeg
def test_ffmpeg_formats_that_are_too_long_are_refused(long_m4a_bytes: bytes) -> None:
    # ffmpeg stops after max_seconds + 1, so the true length is not known.
    message = _decode_error(long_m4a_bytes, ClipTooLongError, max_seconds=2)

    assert message == "clip is over 3 s long; the maximum is 2 s"


def test_without_ffmpeg_other_formats_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.audio.shutil.which", lambda name: None)

    message = _decode_error(M4A_HEADER, DecodeError)

    assert message == f"cannot decode MP4/M4A data: {NOT_LIBSNDFILE}"


# 16-bit PCM WAV read by the standard library's wave, everything else by libsndfile


def _libsndfile(data: bytes) -> np.ndarray:
    return to_mono(sf.read(io.BytesIO(data), dtype="float32", always_2d=True)[0])


def _noise(frames: int, channels: int) -> np.ndarray:
    return np.random.default_rng(channels).uniform(-0.9, 0.9, (frames, channels))


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_wav_layout_gives_libsndfiles_samples(subtype: str, channels: int) -> None:
    data = encode(_noise(SR // 4, channels), subtype=subtype)

    clip = decode(data, sample_rate=SR)

    assert clip.channels == channels
    np.testing.assert_array_equal(clip.samples, _libsndfile(data))


def test_pcm16_wav_skips_libsndfile(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(tone(440), subtype="PCM_16")
    expected = _libsndfile(data)
    monkeypatch.setattr(sf, "SoundFile", None)  # any call to libsndfile would fail

    np.testing.assert_array_equal(decode(data, sample_rate=SR).samples, expected)


@pytest.mark.parametrize(("subtype", "fmt"), [("PCM_16", "WAV"), ("PCM_24", "WAV"),
                                           ("FLOAT", "WAV"), ("PCM_16", "FLAC")])  # fmt: skip
def test_only_a_pcm16_wav_is_one_numpy_reads_alone(subtype: str, fmt: str) -> None:
    data = encode(_noise(100, 2), subtype=subtype, fmt=fmt)

    assert is_pcm16_wav(data) is ((subtype, fmt) == ("PCM_16", "WAV"))


def test_a_pcm16_wav_header_numpy_cannot_read_is_not_one() -> None:
    data = bytearray(encode(tone(440), subtype="PCM_16"))
    data[24:28] = bytes(4)  # the fmt chunk's sample rate: libsndfile's and ffmpeg's to refuse

    assert not is_pcm16_wav(bytes(data))
    assert not is_pcm16_wav(b"RIFF" + bytes(40))


@pytest.mark.parametrize("cut", [1, 2, 3, 1001])
def test_a_truncated_pcm16_wav_gives_its_whole_frames(cut: int) -> None:
    data = encode(_noise(1000, 2), subtype="PCM_16")

    clip = decode(data[:-cut], sample_rate=SR)

    whole_frames = 1000 - -(-cut // 4)  # 4 bytes a stereo frame; a partial frame is dropped
    assert clip.samples.shape == (whole_frames,)
    np.testing.assert_array_equal(clip.samples, _libsndfile(data)[:whole_frames])


@pytest.mark.requires_ffmpeg  # libsndfile refuses it too, so ffmpeg gets the last word
def test_a_pcm16_wav_with_a_zero_sample_rate_is_refused() -> None:
    data = bytearray(encode(tone(440), subtype="PCM_16"))
    data[24:28] = bytes(4)  # the fmt chunk's sample rate

    message = _decode_error(bytes(data), DecodeError)

    assert message == "cannot decode WAV data: not a supported audio format"


# Downmix and resampling


def test_stereo_is_averaged_to_mono() -> None:
    stereo = np.stack([tone(440), np.zeros(SR, np.float32)], axis=1)  # left tone, right silent

    clip = decode(encode(stereo, subtype="FLOAT"), sample_rate=SR)

    assert clip.channels == 2
    np.testing.assert_array_equal(clip.samples, tone(440) / 2)
    assert float(np.abs(clip.samples).max()) == pytest.approx(0.25, abs=1e-4)


@pytest.mark.parametrize("source_rate", [8000, 44100])
def test_resamples_to_the_analysis_rate_keeping_the_pitch(source_rate: int) -> None:
    data = encode(tone(440, sample_rate=source_rate), source_rate, subtype="FLOAT")

    clip = decode(data, sample_rate=SR)

    assert (clip.sample_rate, clip.source_rate) == (SR, source_rate)
    assert clip.samples.shape == (SR,)
    assert clip.samples.dtype == np.float32
    assert peak_hz(clip.samples, SR) == 440.0


@pytest.mark.parametrize("channels", [2, 4])
def test_one_voiced_channel_beside_silent_ones_is_not_taken_for_cancelling(channels: int) -> None:
    layout = np.zeros((SR, channels), np.float32)
    layout[:, 0] = tone(440)  # the mix is 20 log10(channels) dB under the voiced channel

    clip = decode(encode(layout, subtype="FLOAT"), sample_rate=SR)

    np.testing.assert_allclose(clip.samples, tone(440) / channels, atol=1e-7)


@pytest.mark.parametrize(
    ("inverted", "dtype", "mix"),
    [(-1.0, np.int16, "silent"), (-0.999, np.float32, "66 dB under its loudest channel")],
)
def test_channels_that_cancel_when_mixed_are_refused_for_it(
    inverted: float, dtype: type, mix: str
) -> None:
    left = tone(440) * (16_384 if dtype is np.int16 else 1)  # int16 samples are written as they are
    stereo: np.ndarray = np.stack([left, inverted * left], axis=1).astype(dtype)  # one reversed

    message = _decode_error(encode(stereo, subtype="PCM_16" if dtype is np.int16 else "FLOAT"))

    assert message == (
        f"clip's 2 channels cancel when mixed to one (the mix is {mix}): one of them is "
        "inverted; send one channel alone"
    )


def test_channels_that_cancel_are_told_by_libsndfile_s_reader_too() -> None:
    stereo = np.stack([tone(440), -tone(440)], axis=1)

    message = _decode_error(encode(stereo, fmt="FLAC"))

    assert message == (
        "clip's 2 channels cancel when mixed to one (the mix is silent): one of them is "
        "inverted; send one channel alone"
    )


def test_to_mono_keeps_a_mono_float32_array() -> None:
    samples = tone(440)

    assert to_mono(samples) is samples


# Refusals


def test_empty_bytes_are_refused() -> None:
    assert _decode_error(b"") == "clip is empty (0 bytes)"


def test_a_file_without_samples_is_refused() -> None:
    assert _decode_error(encode(np.zeros(0, np.float32))) == "clip has no samples"


@pytest.mark.parametrize(("frames", "rate"), [(1, 48_000), (5, 192_000)])
def test_a_clip_shorter_than_one_sample_at_the_model_rate_is_refused(
    frames: int, rate: int
) -> None:
    data = encode(np.full(frames, 0.5, np.float32), rate)

    assert _decode_error(data) == (
        f"clip has no samples at {SR} Hz: its {frames} at {rate} Hz last less than one"
    )


def test_garbage_without_ffmpeg_is_no_audio_format_and_ffmpeg_goes_unnamed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installing ffmpeg would not help: it is never handed an image or text."""
    monkeypatch.setattr("pipeline.audio.shutil.which", lambda name: None)

    message = _decode_error(PNG_BYTES, DecodeError)

    assert message == "cannot decode PNG image data: not a supported audio format"


@pytest.mark.requires_ffmpeg
@pytest.mark.parametrize(
    ("data", "kind"),
    [(PNG_BYTES, "PNG image"), (b"no audio here " * 20, "text"), (bytes(range(7, 200)), "unknown")],
)
def test_garbage_that_ffmpeg_cannot_read_names_the_sniffed_format(data: bytes, kind: str) -> None:
    message = _decode_error(data, DecodeError)

    assert message == f"cannot decode {kind} data: not a supported audio format"


def test_non_finite_samples_are_refused() -> None:
    samples = tone(440)
    samples[100], samples[200] = np.nan, np.inf

    message = _decode_error(encode(samples, subtype="FLOAT"))

    assert message == "clip has 2 non-finite samples (NaN or infinity)"


def test_digital_silence_is_refused() -> None:
    message = _decode_error(encode(np.zeros(SR, np.float32), subtype="PCM_16"))

    assert message == "clip is silent: peak level -inf dBFS is below -80 dBFS"


def test_a_clip_below_minus_80_dbfs_is_refused() -> None:
    quiet = tone(440, amplitude=10 ** (-90 / 20))

    message = _decode_error(encode(quiet, subtype="FLOAT"))

    assert message == "clip is silent: peak level -90.0 dBFS is below -80 dBFS"


def test_a_clip_whose_sound_lies_above_the_model_band_is_refused_not_measured() -> None:
    ultrasound = tone(30_000, sample_rate=96_000)  # what a 16 kHz model keeps is the residue

    message = _decode_error(encode(ultrasound, 96_000, subtype="FLOAT"))

    assert message == (
        "clip holds almost no sound below 8000 Hz: resampled from 96000 Hz to 16000 Hz it "
        "keeps -63 dB of its energy, under the -30 dB needed"
    )


def test_a_voice_band_tone_at_96_khz_keeps_its_energy() -> None:
    clip = decode(encode(tone(3000, sample_rate=96_000), 96_000, subtype="FLOAT"), sample_rate=SR)

    assert peak_hz(clip.samples, SR) == 3000.0


def test_a_clip_that_overflows_when_resampled_names_its_source_peak() -> None:
    huge = tone(440, sample_rate=44_100, amplitude=3e38)  # finite, as float32 holds it

    message = _decode_error(encode(huge, 44_100, subtype="FLOAT"))

    assert message == (
        "clip overflows when resampled from 44100 Hz: its peak sample 3e+38 is far beyond "
        "full scale (1.0)"
    )


@pytest.mark.parametrize(
    ("samples", "shown"),
    [
        (np.full(SR, 0.3, np.float32), "+0.300 of full scale, more than its loudest 0.1 s swings "
         "about its own mean (RMS 0.000)"),
        (tone(440, amplitude=0.1) - 0.5, "-0.500 of full scale, more than its loudest 0.1 s "
         "swings about its own mean (RMS 0.071)"),
    ],
)  # fmt: skip
def test_a_clip_offset_from_zero_more_than_it_swings_is_refused(
    samples: np.ndarray, shown: str
) -> None:
    message = _decode_error(encode(samples, subtype="FLOAT"))

    assert message == (
        f"clip is offset from zero by {shown}: a fault of the microphone or converter, or no "
        "sound at all"
    )


def test_a_clip_shorter_than_an_offset_block_is_left_to_the_speech_check() -> None:
    """One sample is a constant too; what it lacks is speech (``require_speech`` says so)."""
    clip = decode(encode(np.full(SR // 20, 0.5, np.float32), subtype="FLOAT"), sample_rate=SR)

    assert clip.samples.shape == (SR // 20,)


def test_an_offset_under_the_loudest_swing_is_accepted_when_the_peak_is_a_lone_click() -> None:
    """The block holding the peak (a click) swings less than the offset; another swings more."""
    samples = np.full(SR, 0.3, np.float32)
    samples[SR // 2 :] += tone(440, seconds=0.5)  # RMS 0.354 about its mean
    samples[100] = -1.0  # the peak, in a block that otherwise holds the offset alone

    clip = decode(encode(samples, subtype="FLOAT"), sample_rate=SR)

    assert clip.samples[100] == -1.0


def test_a_small_offset_under_the_sound_is_accepted() -> None:
    clip = decode(encode(tone(440) + 0.3, subtype="FLOAT"), sample_rate=SR)

    assert float(clip.samples.mean()) == pytest.approx(0.3, abs=1e-3)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("scale", [1e30, 1e36])  # its block's swing overflows; then its mean
def test_an_offset_clip_far_beyond_full_scale_is_left_quietly_to_the_features(
    scale: float,
) -> None:
    """Sums that overflow float32 prove no offset: the features refuse such a clip, naming its
    peak (``test_samples_far_beyond_full_scale_are_refused``), and nothing warns on the way.
    The tone's RMS (0.354) is above its offset (0.2), as whole and in blocks."""
    samples = (tone(440) + 0.2) * np.float32(scale)
    data = encode(samples, subtype="FLOAT")

    np.testing.assert_array_equal(decode(data, sample_rate=SR).samples, samples)
    np.testing.assert_array_equal(_joined(data), samples)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("code", [False, True])  # noise near the float maximum, or two values
def test_samples_near_the_float_maximum_are_decoded_without_a_warning(code: bool) -> None:
    """Their float32 sum turns to inf - inf (nan), and a few values' steps overflow: neither
    proves anything, and the features refuse the clip, naming its peak."""
    noise = np.random.default_rng(0).uniform(-1, 1, SR)
    samples = (np.sign(noise) if code else noise).astype(np.float32) * np.float32(3e38)

    decoded = decode(encode(samples, subtype="FLOAT"), sample_rate=SR)

    np.testing.assert_array_equal(decoded.samples, samples)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_an_offset_beyond_the_swing_far_beyond_full_scale_is_refused_whole_or_in_blocks() -> None:
    data = encode((tone(440) + 0.5) * np.float32(1e30), subtype="FLOAT")

    with pytest.raises(InvalidAudioError) as whole:
        decode(data, sample_rate=SR)
    with pytest.raises(InvalidAudioError) as blocks:
        _joined(data)

    assert str(blocks.value) == str(whole.value)
    assert str(whole.value) == (
        "clip is offset from zero by +499999997247863647717596069888.000 of full scale, more "
        "than its loudest 0.1 s swings about its own mean (RMS "
        "353553396738928584532460306432.000): a fault of the microphone or converter, or no "
        "sound at all"
    )


def test_a_clip_at_minus_50_dbfs_is_accepted() -> None:
    clip = decode(encode(tone(440, amplitude=10 ** (-50 / 20)), subtype="FLOAT"), sample_rate=SR)

    assert clip.samples.shape == (SR,)


@pytest.mark.parametrize("fmt", LIBSNDFILE_FORMATS)
def test_a_clip_longer_than_max_seconds_is_refused(fmt: str) -> None:
    message = _decode_error(
        encode(tone(440, seconds=3.0), fmt=fmt), ClipTooLongError, max_seconds=2
    )

    assert message == "clip is 3.00 s long; the maximum is 2 s"


@pytest.mark.parametrize("fmt", LIBSNDFILE_FORMATS)
@pytest.mark.parametrize(("rate", "shown"), [(16_000, "2.0001"), (44_100, "2.00002")])
def test_a_clip_one_sample_over_max_seconds_reads_as_over_it(
    fmt: str, rate: int, shown: str
) -> None:
    over = tone(440, seconds=2.0 + 1 / rate, sample_rate=rate)
    at_limit = tone(440, seconds=2.0, sample_rate=rate)

    message = _decode_error(encode(over, rate, fmt=fmt), ClipTooLongError, max_seconds=2)
    with pytest.raises(ClipTooLongError) as decoded:
        validate_waveform(over, rate, max_seconds=2)

    assert message == str(decoded.value) == f"clip is {shown} s long; the maximum is 2 s"
    assert len(decode(encode(at_limit, rate, fmt=fmt), sample_rate=rate, max_seconds=2).samples)


@pytest.mark.parametrize("limit", [math.inf, 1e308, math.nan, -1.0, 0, 86_401.0])
def test_a_limit_on_length_that_is_not_a_sane_number_of_seconds_is_refused(limit: float) -> None:
    with pytest.raises(ParameterError) as error:
        decode(encode(tone(440, seconds=1.0)), sample_rate=SR, max_seconds=limit)

    assert str(error.value) == (
        f"max_seconds={limit!r} must be a number of seconds above 0 and at most 86400"
    )


def test_the_highest_limit_on_length_decodes() -> None:
    clip = decode(encode(tone(440, seconds=1.0)), sample_rate=SR, max_seconds=MAX_SECONDS_LIMIT)

    assert clip.duration_s == 1.0


def test_validate_waveform_measures_length_at_the_given_rate() -> None:
    with pytest.raises(ClipTooLongError) as error:
        validate_waveform(tone(440, seconds=3.0), SR, max_seconds=2.5)

    assert str(error.value) == "clip is 3.00 s long; the maximum is 2.5 s"


def test_a_50_ms_burst_is_too_little_speech() -> None:
    samples = np.zeros(SR, np.float32)
    samples[SR // 2 : SR // 2 + SR // 20] = tone(440, seconds=0.05)
    clip = decode(encode(samples, subtype="FLOAT"), sample_rate=SR)  # loud enough to decode

    with pytest.raises(InvalidAudioError) as error:
        histogram(clip.samples, FeatureConfig())

    assert str(error.value) == (
        "clip holds no speech: it has 0.08 s of sound within 40 dB of its loudest frame; "
        "at least 0.1 s is needed"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate": 0}, "sample_rate=0 must be a positive integer"),
        (
            {"sample_rate": SR, "max_seconds": 0},
            "max_seconds=0 must be a number of seconds above 0 and at most 86400",
        ),
    ],
)
def test_decode_rejects_bad_options(options: dict[str, float], message: str) -> None:
    with pytest.raises(ParameterError) as error:
        decode(encode(tone(440)), **options)  # type: ignore[arg-type]

    assert str(error.value) == message


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (M4A_HEADER, "MP4/M4A"),
        (b"\x1a\x45\xdf\xa3rest", "WebM/Matroska"),
        (b"OggS\x00", "Ogg"),
        (b"RIFF\x00\x00\x00\x00WAVE", "WAV"),
        (b"fLaC\x00", "FLAC"),
        (b"ID3\x04", "MP3"),
        (b"\xff\xfb\x90\x00", "MP3"),
        (PNG_BYTES, "PNG image"),
        (b"%PDF-1.7", "PDF document"),
        (b'{"a": 1}', "JSON/text"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
        (b"GIF89a\x01\x00", "GIF image"),
        (b"PK\x03\x04\x14\x00", "ZIP archive"),
        (b"\x1f\x8b\x08\x00", "gzip archive"),
        (b"# minutes of the meeting\n\tnothing decided\r\n", "text"),
        ("réunion à 9 h".encode()[:-1] + b"\xc3", "text"),  # a character cut off at the end
        ("réunion".encode()[:3], "unknown"),  # too short to tell
        (b"#EXTM3U\nhello.wav\n", "text"),
        (b"notes \x00 with a NUL", "unknown"),
        (b"caf\xe9 in latin-1, not UTF-8", "unknown"),
        (b"\x00\x01", "unknown"),
        (b"", "unknown"),
    ],
)
def test_sniff_format_names_the_container(data: bytes, name: str) -> None:
    assert sniff_format(data) == name


@pytest.mark.parametrize("subtype", ["ULAW", "ALAW"])
def test_a_g711_wav_is_measured_as_companded_before_resampling(subtype: str) -> None:
    clip = decode(encode(harmonics(sample_rate=8000), 8000, subtype=subtype), sample_rate=SR)

    assert clip.source_companded_levels is not None and clip.source_companded_levels > 64
    assert companded_levels(clip.samples) == 0  # resampled, the code's levels are spread out


# Decoding in blocks (long recordings: timelines)


def _joined(source: bytes | Path, max_seconds: float = 60.0) -> np.ndarray:
    blocks = list(decode_blocks(source, sample_rate=SR, max_seconds=max_seconds))
    assert all(b.dtype == np.float32 and b.ndim == 1 and len(b) for b in blocks)
    return np.concatenate(blocks)


def _stereo(rate: int, seconds: float) -> np.ndarray:
    """Two channels that differ, long enough for several of libsndfile's blocks."""
    left = tone(440, seconds=seconds, sample_rate=rate)
    return np.stack([left, 0.5 * np.roll(left, 7)], axis=1)


@pytest.mark.parametrize("rate", [8000, SR, 44100])
@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", None), ("OGG", None)]
)
@pytest.mark.parametrize("channels", [1, 2])
def test_blocks_join_into_the_decoded_samples(
    tmp_path: Path, rate: int, fmt: str, subtype: str | None, channels: int
) -> None:
    samples = _stereo(rate, 3.5)[:, :channels]
    data = encode(samples, rate, fmt=fmt, subtype=subtype)
    path = tmp_path / f"clip.{EXTENSIONS[fmt]}"
    path.write_bytes(data)

    whole = decode(data, sample_rate=SR).samples

    assert len(whole) > 3 * SR
    for source in (data, path):
        np.testing.assert_array_equal(_joined(source), whole)


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="libsndfile cannot write MP3")
def test_an_mp3s_blocks_join_into_its_decoded_samples() -> None:
    data = encode(_stereo(44100, 3.5), 44100, fmt="MP3")

    np.testing.assert_array_equal(_joined(data), decode(data, sample_rate=SR).samples)


def test_a_truncated_pcm16_wav_file_gives_its_whole_frames(tmp_path: Path) -> None:
    data = encode(_stereo(SR, 5.0))[:-3]
    path = tmp_path / "cut.wav"
    path.write_bytes(data)

    np.testing.assert_array_equal(_joined(path), decode(data, sample_rate=SR).samples)


def _nan_in_each_block() -> bytes:
    samples = tone(440, seconds=10.0)
    samples[[10, 70_000, 150_000]] = [np.nan, np.inf, -np.inf]
    return encode(samples, subtype="FLOAT")


@pytest.mark.parametrize(
    ("data", "max_seconds"),
    [
        (b"", 60.0),
        (encode(np.zeros(0, np.float32)), 60.0),
        (encode(np.full(1, 0.5, np.float32), 48_000), 60.0),
        (encode(np.full(5, 0.5, np.float32), 192_000), 60.0),
        (_nan_in_each_block(), 60.0),
        (encode(np.zeros(3 * SR, np.float32)), 60.0),
        (encode(tone(440, seconds=3.0) * 1e-5), 60.0),
        (encode(tone(440, seconds=3.0), 4000), 60.0),
        (encode(tone(440, seconds=3.0)), 2.0),
        (encode(tone(440, seconds=3.0), fmt="FLAC"), 2.0),
        (encode(tone(440, seconds=3.0), fmt="OGG"), 2.0),
        (encode(np.stack([tone(440), -tone(440)], axis=1)), 60.0),
        (encode(np.stack([tone(440), -tone(440)], axis=1), fmt="FLAC"), 60.0),
        (encode(tone(30_000, sample_rate=96_000), 96_000, subtype="FLOAT"), 60.0),
        (encode(tone(440, sample_rate=44_100, amplitude=3e38), 44_100, subtype="FLOAT"), 60.0),
        (encode(np.full(SR, 0.3, np.float32), subtype="FLOAT"), 60.0),
        (
            encode(tone(440, seconds=10.0, sample_rate=44_100, amplitude=0.1) - 0.5, 44_100,
                   subtype="FLOAT"),
            60.0,
        ),
    ],
)  # fmt: skip
def test_blocks_are_refused_as_the_whole_clip_is(data: bytes, max_seconds: float) -> None:
    with pytest.raises(InvalidAudioError) as whole:
        decode(data, sample_rate=SR, max_seconds=max_seconds)

    with pytest.raises(InvalidAudioError) as blocks:
        _joined(data, max_seconds)

    assert (type(blocks.value), str(blocks.value)) == (type(whole.value), str(whole.value))


def test_a_file_too_big_for_its_blocks_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    path.write_bytes(encode(tone(440, seconds=100.0)))  # over 1 MB + 1 s of samples

    with pytest.raises(InvalidAudioError) as whole:
        decode(path, sample_rate=SR, max_seconds=1.0)
    with pytest.raises(InvalidAudioError) as blocks:
        _joined(path, 1.0)

    assert str(blocks.value) == str(whole.value)
    assert str(blocks.value).startswith(f"file is {path.stat().st_size} bytes; ")


@pytest.mark.parametrize("data", [M4A_HEADER, PNG_BYTES])
def test_data_libsndfile_cannot_read_is_left_to_decode(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "clip.m4a"
    path.write_bytes(data)

    for source in (data, path):
        with pytest.raises(NotStreamableError) as caught:
            _joined(source)
        assert caught.value.source == source


def test_a_flac_libsndfile_fails_on_part_way_is_left_to_decode() -> None:
    data = encode(tone(440, seconds=10.0), fmt="FLAC")
    cut = data[: len(data) * 3 // 4]  # libsndfile loses sync in the last frame
    blocks = decode_blocks(cut, sample_rate=SR)

    assert len(next(blocks)) == BLOCK_FRAMES
    with pytest.raises(NotStreamableError) as caught:
        list(blocks)
    assert caught.value.source == cut


def test_blocks_check_their_options_as_decode_does() -> None:
    with pytest.raises(ParameterError, match=r"^sample_rate=0 must be a positive integer$"):
        list(decode_blocks(encode(tone(440)), sample_rate=0))
    with pytest.raises(ParameterError, match=r"^max_seconds=-1.0 must be a number of seconds"):
        list(decode_blocks(encode(tone(440)), sample_rate=SR, max_seconds=-1.0))
