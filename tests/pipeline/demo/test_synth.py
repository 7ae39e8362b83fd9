"""Tests of the demo-data synthesiser: file layout, determinism, levels, pitch and refusals."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from pipeline.demo.synth import STRANGER, VOICES, VoiceSpec, synthesize_hello, write_demo_data
from pipeline.errors import DatasetError, ParameterError

SR = 16000
HOP = 160  # samples: 10 ms analysis hop


def _dbfs(value: float) -> float:
    return float(20.0 * np.log10(value))


def _rms(x: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _frame_db(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """RMS of 20 ms frames every 10 ms, in dB relative to the clip's peak sample."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 2 * HOP)[::HOP].astype(np.float64)
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    return np.asarray(20.0 * np.log10(rms / np.abs(x).max() + 1e-12), dtype=np.float64)


def _median_f0(x: npt.NDArray[np.float32]) -> float:
    """Median YIN pitch (Hz) over frames within 20 dB of the loudest."""
    f0 = librosa.yin(x, fmin=60, fmax=400, sr=SR, frame_length=1024, hop_length=HOP, center=False)
    loudness = _frame_db(x)[: len(f0)]
    voiced = loudness > loudness.max() - 20.0
    return float(np.median(f0[: len(loudness)][voiced]))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo_data(out, clips_per_voice=3, seed=0)
    return out


def test_writes_the_demo_voices_with_numbered_names(tmp_path: Path) -> None:
    written = write_demo_data(tmp_path, clips_per_voice=3)

    names = ["hello_000.wav", "hello_001.wav", "hello_002.wav"]
    assert list(written) == ["Steve", "David"]
    assert written == {v: [tmp_path / v / n for n in names] for v in ("Steve", "David")}
    assert sorted(_tree(tmp_path)) == [f"{v}/{n}" for v in ("David", "Steve") for n in names]


def test_stranger_is_not_a_demo_voice() -> None:
    assert list(VOICES) == ["Steve", "David"]
    assert STRANGER.name == "Stranger"
    assert STRANGER not in VOICES.values()


def test_same_seed_gives_byte_identical_files(tmp_path: Path, demo_dir: Path) -> None:
    write_demo_data(tmp_path, clips_per_voice=3, seed=0)

    assert _tree(tmp_path) == _tree(demo_dir)


def test_different_seed_gives_different_files(tmp_path: Path, demo_dir: Path) -> None:
    write_demo_data(tmp_path, clips_per_voice=3, seed=1)

    ours, theirs = _tree(tmp_path), _tree(demo_dir)
    assert all(ours[name] != theirs[name] for name in theirs)


def test_clips_do_not_depend_on_clip_count_or_other_voices(tmp_path: Path, demo_dir: Path) -> None:
    write_demo_data(tmp_path, clips_per_voice=2, seed=0, voices=[VOICES["David"]])

    expected = {k: v for k, v in _tree(demo_dir).items() if k.startswith("David/")}
    del expected["David/hello_002.wav"]
    assert _tree(tmp_path) == expected


def test_files_are_16_bit_mono_at_the_sample_rate(demo_dir: Path) -> None:
    for path in demo_dir.rglob("*.wav"):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.format, info.subtype) == (
            SR,
            1,
            "WAV",
            "PCM_16",
        )


@pytest.mark.parametrize("sample_rate", [8000, 16000, 44100])
def test_clip_is_float32_with_peak_between_minus_12_and_minus_3_dbfs(sample_rate: int) -> None:
    clip = synthesize_hello(VOICES["Steve"], np.random.default_rng(3), sample_rate)

    assert clip.dtype == np.float32
    assert clip.ndim == 1
    assert 0.7 * sample_rate < len(clip) < 1.4 * sample_rate
    assert -12.0 <= _dbfs(np.abs(clip).max()) <= -3.0


def test_written_peaks_are_between_minus_12_and_minus_3_dbfs(demo_dir: Path) -> None:
    for path in demo_dir.rglob("*.wav"):
        clip, _ = sf.read(path, dtype="float32")
        assert -12.01 <= _dbfs(np.abs(clip).max()) <= -2.99  # 16-bit rounding


def test_speech_is_framed_by_near_silence(demo_dir: Path) -> None:
    for path in demo_dir.rglob("*.wav"):
        clip, _ = sf.read(path, dtype="float32")
        edge = SR // 10  # the shortest silence, 0.1 s

        assert _dbfs(_rms(clip[:edge])) < -55.0
        assert _dbfs(_rms(clip[-edge:])) < -55.0
        active = np.flatnonzero(_frame_db(clip) > -40.0)
        speech_s = (active[-1] - active[0] + 2) * HOP / SR
        assert 0.5 <= speech_s <= 0.8


@pytest.mark.parametrize("voice", [*VOICES.values(), STRANGER], ids=lambda v: v.name)
def test_median_pitch_is_within_15_percent_of_the_spec(voice: VoiceSpec) -> None:
    for seed in range(3):
        f0 = _median_f0(synthesize_hello(voice, np.random.default_rng(seed)))
        assert abs(f0 / voice.pitch_hz - 1.0) <= 0.15, (seed, f0)


def test_steve_speaks_lower_than_the_stranger_and_david(demo_dir: Path) -> None:
    def median_f0(voice: str) -> float:
        clips = [sf.read(p, dtype="float32")[0] for p in sorted((demo_dir / voice).glob("*.wav"))]
        return float(np.median([_median_f0(clip) for clip in clips]))

    stranger = _median_f0(synthesize_hello(STRANGER, np.random.default_rng(0)))
    assert median_f0("Steve") < stranger < median_f0("David")


def test_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    existing = tmp_path / "David" / "hello_001.wav"
    existing.parent.mkdir()
    existing.write_bytes(b"keep me")

    with pytest.raises(DatasetError) as error:
        write_demo_data(tmp_path, clips_per_voice=3)

    assert str(error.value) == f"{existing} already exists; refusing to overwrite it"
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "David",
        "David/hello_001.wav",
    ]


def test_refuses_an_out_dir_that_is_a_file(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "demo"
    not_a_folder.write_bytes(b"")

    with pytest.raises(DatasetError) as error:
        write_demo_data(not_a_folder, clips_per_voice=1)

    assert str(error.value) == f"{not_a_folder} exists and is not a folder"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clips_per_voice": 0}, "clips_per_voice=0 must be >= 1"),
        ({"clips_per_voice": 1001}, "clips_per_voice=1001 must be <= 1000"),
        ({"seed": -1}, "seed=-1 must be >= 0"),
        ({"sample_rate": 4000}, "sample_rate=4000 must be in [8000, 48000]"),
        ({"voices": []}, "voices is empty; at least one voice is needed"),
        (
            {"voices": [VOICES["Steve"], STRANGER, VOICES["Steve"]]},
            "voices has the name 'Steve' twice; names must be unique",
        ),
    ],
)
def test_write_demo_data_rejects_bad_arguments(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ParameterError) as error:
        write_demo_data(tmp_path, **options)  # type: ignore[arg-type]

    assert str(error.value) == message
    assert list(tmp_path.iterdir()) == []


def test_synthesize_hello_rejects_a_bad_sample_rate() -> None:
    with pytest.raises(ParameterError) as error:
        synthesize_hello(STRANGER, np.random.default_rng(0), sample_rate=96000)

    assert str(error.value) == "sample_rate=96000 must be in [8000, 48000]"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "../x"}, "name='../x' must be letters, digits, '_' or '-'"),
        ({"pitch_hz": 30.0}, "pitch_hz=30.0 must be in [50, 400]"),
        ({"formant_scale": 2.0}, "formant_scale=2.0 must be in [0.7, 1.4]"),
        ({"tilt": -1.0}, "tilt=-1.0 must be in [0, 30]"),
        ({"breathiness": float("nan")}, "breathiness=nan must be in [0, 1]"),
        ({"jitter": 0.1}, "jitter=0.1 must be in [0, 0.05]"),
        ({"shimmer": 0.5}, "shimmer=0.5 must be in [0, 0.3]"),
    ],
)
def test_voice_spec_rejects_out_of_range_fields(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "name": "Test",
        "pitch_hz": 120.0,
        "formant_scale": 1.0,
        "tilt": 8.0,
        "breathiness": 0.1,
    }
    with pytest.raises(ParameterError) as error:
        VoiceSpec(**(base | fields))  # type: ignore[arg-type]

    assert str(error.value) == message


def test_a_folder_that_cannot_be_made_is_refused_naming_it(tmp_path: Path) -> None:
    out = tmp_path / ("x" * 300) / "demo"  # a name longer than any file system takes

    with pytest.raises(DatasetError) as error:
        write_demo_data(out, clips_per_voice=1)

    assert str(error.value) == f"cannot write '{out}': File name too long"
