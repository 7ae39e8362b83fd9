"""``voiceid timeline``: who spoke when, as text, JSON and RTTM."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import soundfile as sf

from pipeline.predict import reason_in_words
from service.schemas import TimelineResponse, TimelineSegment
from tests.conversations import SR, conversation
from tests.helpers import MODEL_DIR, stdin_from
from voiceid.cli import main


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("talk") / "team meeting.wav"
    sf.write(path, conversation(["Steve", "David"])[0], SR, subtype="PCM_16")
    return path


def test_json_holds_segments_and_totals_named_as_the_servers_answer_names_them(
    talk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["timeline", str(MODEL_DIR), str(talk), "--json"]) == 0

    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"segments", "totals", "duration_s", "window_s", "hop_s"}
    assert set(out) == set(TimelineResponse.model_fields) - {"model", "timing_ms"}
    assert (out["window_s"], out["hop_s"]) == (1.0, 0.25)
    fields = {"start", "end", "speaker", "confidence", "unknown", "unknown_reason"}
    assert fields == set(TimelineSegment.model_fields)
    assert [set(s) for s in out["segments"]] == [fields] * len(out["segments"])
    assert {"Steve", "David"} <= set(out["totals"])


def test_rttm_has_one_speaker_line_per_segment(
    talk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["timeline", str(MODEL_DIR), str(talk), "--json"]) == 0
    segments = json.loads(capsys.readouterr().out)["segments"]

    assert main(["timeline", str(MODEL_DIR), str(talk), "--rttm"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(segments)
    first = segments[0]
    assert lines[0] == (
        f"SPEAKER team_meeting 1 {first['start']:.3f} {first['end'] - first['start']:.3f} "
        f"<NA> <NA> {first['speaker']} <NA> <NA>"
    )


def test_text_lists_turns_then_speaking_time(
    talk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["timeline", str(MODEL_DIR), str(talk), "--smooth", "1"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[2] == "Steve"
    assert lines[-1].startswith(f"{len(conversation(['Steve', 'David'])[0]) / SR:.1f} s: ")


def test_a_bad_option_is_an_error_naming_it(talk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["timeline", str(MODEL_DIR), str(talk), "--hop-s", "2"]) == 2

    assert capsys.readouterr().err == (
        "voiceid timeline: error: hop_s=2.0 must be positive and at most window_s=1.0\n"
    )


def test_a_missing_file_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.wav"

    assert main(["timeline", str(MODEL_DIR), str(missing)]) == 2

    assert capsys.readouterr().err == (
        f"voiceid timeline: error: cannot read {str(missing)!r}: No such file or directory\n"
    )


def test_a_recording_on_stdin_is_read_from_a_dash(
    talk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ffmpeg -i meeting.mp4 -f wav - | voiceid timeline MODEL -``; RTTM names it stdin."""
    assert main(["timeline", str(MODEL_DIR), str(talk), "--rttm"]) == 0
    from_file = capsys.readouterr().out

    with stdin_from(talk):
        assert main(["timeline", str(MODEL_DIR), "-", "--rttm"]) == 0

    assert capsys.readouterr().out == from_file.replace(" team_meeting ", " stdin ")


def test_a_web_address_is_an_error_saying_to_download_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["timeline", str(MODEL_DIR), "https://example.org/meeting.wav"]) == 2

    assert capsys.readouterr().err == (
        "voiceid timeline: error: cannot read 'https:/example.org/meeting.wav': No such file or "
        "directory: voiceid reads files, not web addresses: download it first (curl -O)\n"
    )


def test_timeline_needs_no_training_extra(
    talk: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("keras", "tensorflow", "matplotlib", "librosa", "pyarrow"):
        monkeypatch.setitem(sys.modules, module, None)

    assert main(["timeline", str(MODEL_DIR), str(talk), "--rttm"]) == 0
    assert capsys.readouterr().out.startswith("SPEAKER team_meeting 1 ")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--pause-s", "inf"], "pause_s=inf must be from 0 to 86400 s"),
        (["--noise-s", "inf"], "noise_s=inf must be from window_s=1.0 to 86400 s"),
        (["--floor-dbfs", "nan"],
         "floor_dbfs=nan must be a number of dB at most 0 (a full-scale tone's level)"),
        (["--floor-dbfs", "inf"],
         "floor_dbfs=inf must be a number of dB at most 0 (a full-scale tone's level)"),
        (["--over-noise-db", "nan"], "over_noise_db=nan must be a number of dB >= 0"),
    ],
)  # fmt: skip
def test_an_option_that_is_no_number_in_range_is_refused_naming_it(
    talk: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    code = main(["timeline", str(MODEL_DIR), str(talk), *option])

    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err == f"voiceid timeline: error: {message}\n"


def test_a_recording_over_the_limit_is_an_error_naming_the_option_that_admits_it(
    talk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["timeline", str(MODEL_DIR), str(talk), "--max-seconds", "2"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    seconds = len(conversation(["Steve", "David"])[0]) / SR
    assert captured.err == (
        f"voiceid timeline: error: {str(talk)!r}: clip is {seconds:.2f} s long; the maximum is "
        "2 s: raise the limit with --max-seconds\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"minutes of the meeting\n", "cannot decode text data: not a supported audio format"),
        (b"", "clip is empty (0 bytes)"),
    ],
)
def test_a_file_that_is_no_usable_recording_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    notes = tmp_path / "réunion notes.txt"
    notes.write_bytes(content)

    code = main(["timeline", str(MODEL_DIR), str(notes)])

    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err == f"voiceid timeline: error: {str(notes)!r}: {message}\n"


def test_text_says_why_a_turn_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    talk = tmp_path / "with a stranger.wav"
    sf.write(talk, conversation(["Steve", "Stranger", "David"])[0], SR, subtype="PCM_16")
    assert main(["timeline", str(MODEL_DIR), str(talk), "--json"]) == 0
    segments = json.loads(capsys.readouterr().out)["segments"]
    unknown = next(s for s in segments if s["unknown"])

    assert main(["timeline", str(MODEL_DIR), str(talk)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[segments.index(unknown)] == (
        f"{unknown['start']:8.2f} {unknown['end']:8.2f}  unknown ({unknown['confidence']:.3f}): "
        f"{reason_in_words(unknown['unknown_reason'])}"
    )
