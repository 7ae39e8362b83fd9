"""End to end through ``voiceid``: train, evaluate and predict on the synthetic voices."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.bundle import load_bundle
from pipeline.config import TrainConfig
from pipeline.demo.synth import STRANGER, VOICES, write_demo_data
from pipeline.errors import MissingExtraError
from pipeline.predict import reason_in_words
from tests.helpers import (
    MODEL_DIR,
    data_with_a_linked_subfolder,
    free_port,
    make_format_1,
    stdin_from,
)
from tests.signals import encode, tone
from voiceid import cli
from voiceid.cli import main

TEST_CLIPS = 4  # per voice in the held-out folder
EVALUATE_KEYS = [
    "accuracy",
    "answers",
    "conditions",
    "confusion",
    "false_reject_rate",
    "labels",
    "n",
    "named_right_rate",
    "named_wrong_rate",
    "open_set_auroc",
    "per_speaker",
    "skipped",
    "unknown_speakers",
    "warnings",
]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, demo_data: Path, stranger_data: Path
) -> tuple[Path, dict[str, Any]]:
    """A model trained by ``voiceid train --json`` with the mse loss, and what it printed."""
    out = tmp_path_factory.mktemp("cli") / "model"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(
            ["train", str(demo_data), "--out", str(out), "--unknown-dir", str(stranger_data),
             "--loss", "mse", "--candidates", "2", "--epochs", "100", "--patience", "20",
             "--jobs", "1", "--no-cache", "--json"]
        )  # fmt: skip
    assert code == 0
    return out, json.loads(stdout.getvalue())


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clips the model never saw: Steve, David and the unknown Stranger, 4 each."""
    out = tmp_path_factory.mktemp("held-out")
    voices = [*VOICES.values(), STRANGER]
    write_demo_data(out, clips_per_voice=TEST_CLIPS, seed=1, voices=voices)
    return out


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_json_prints_metrics_and_file_counts(trained: tuple[Path, dict[str, Any]]) -> None:
    out, printed = trained

    assert printed["files"] == {"found": 24, "used": 24, "skipped": 0, "decoded": 24}
    assert printed["skipped"] == []  # each {file, error}, as evaluate --json lists them
    assert (printed["n_train"], printed["n_val"]) == (20, 4)
    assert printed["val_accuracy"] == 1.0
    assert 0.0 <= printed["false_accept_rate"] <= 1.0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["output_activation"] == "sigmoid"
    assert meta["metrics"] == {k: v for k, v in printed.items() if k not in ("files", "skipped")}


def test_evaluate_json_scores_known_and_counts_unknown_speakers(
    capsys: pytest.CaptureFixture[str], trained: tuple[Path, dict[str, Any]], held_out: Path
) -> None:
    model, _ = trained

    code, out, err = _run(capsys, "evaluate", str(model), str(held_out), "--json", "--jobs", "1")

    assert (code, err) == (0, "")
    report = json.loads(out)
    assert sorted(report) == EVALUATE_KEYS
    assert report["labels"] == ["David", "Steve"]
    assert report["n"] == 2 * TEST_CLIPS
    assert report["accuracy"] == 1.0
    assert report["confusion"] == [[TEST_CLIPS, 0], [0, TEST_CLIPS]]
    assert report["per_speaker"] == {
        label: {"precision": 1.0, "recall": 1.0, "count": TEST_CLIPS}
        for label in ("David", "Steve")
    }
    unknown = report["unknown_speakers"]
    assert sorted(unknown) == ["false_accept_rate", "n", "poor_recording", "rejected"]
    assert unknown["n"] == TEST_CLIPS
    assert unknown["rejected"] == round(TEST_CLIPS * (1 - unknown["false_accept_rate"]))
    assert report["skipped"] == []
    assert 0.5 < report["open_set_auroc"] <= 1.0  # the Stranger is farther than known voices
    clean = report["conditions"]["clean"]  # the synthetic voices are clean recordings
    assert (clean["n"], clean["n_unknown_speakers"]) == (2 * TEST_CLIPS, TEST_CLIPS)
    assert clean["false_accept_rate"] == unknown["false_accept_rate"]


def test_evaluate_prints_a_summary(
    capsys: pytest.CaptureFixture[str], trained: tuple[Path, dict[str, Any]], held_out: Path
) -> None:
    model, _ = trained

    _, printed, _ = _run(capsys, "evaluate", str(model), str(held_out), "--jobs", "1", "--json")
    right, wrong, unknown = json.loads(printed)["answers"].values()
    code, out, _ = _run(capsys, "evaluate", str(model), str(held_out), "--jobs", "1")

    assert code == 0
    assert (right + unknown, wrong) == (8, 0)
    lines = out.splitlines()
    assert lines[0] == (
        f"named right {right / 8:.4f} ({right}), named wrong 0.0000 (0), "
        f"unknown {unknown / 8:.4f} ({unknown}) of 8 clips of known speakers"
    )
    assert lines[1] == "accuracy 1.0000 (top label, whether or not answered unknown)"
    assert lines[2] == "                 David: precision 1.000 recall 1.000 n=4"
    assert lines[3] == "                 Steve: precision 1.000 recall 1.000 n=4"
    assert lines[4].startswith("unknown speakers: 4 clips, false accept rate ")
    at = lines.index("by recording condition:")
    assert re.fullmatch(
        r" {9}clean: n=8 named [01]\.\d{3} precision 1\.000 FRR [01]\.\d{3} \(poor recording "
        r"[-01.\d]+\); unknown speakers n=4 FAR [01]\.\d{3}",
        lines[at + 1],
    )


def test_predict_json_names_each_speaker_and_reports_failures(
    capsys: pytest.CaptureFixture[str],
    trained: tuple[Path, dict[str, Any]],
    held_out: Path,
    tmp_path: Path,
) -> None:
    model, _ = trained
    threshold = json.loads((model / "metadata.json").read_text())["threshold"]
    clips = [held_out / "Steve" / "hello_000.wav", held_out / "David" / "hello_000.wav"]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"")

    code, out, _ = _run(capsys, "predict", str(model), *map(str, clips), str(broken), "--json")

    assert code == 1  # one clip failed
    results = json.loads(out)
    for item, clip in zip(results, clips, strict=False):
        assert sorted(item) == ["advice", "confidence", "file", "issues", "quality", "scores",
                                "speaker", "unknown", "unknown_cause",
                                "unknown_reason"]  # fmt: skip
        assert item["quality"]["available_hz"] == 8000.0
        assert (item["unknown_reason"] is None) is (item["speaker"] != "unknown")
        assert item["unknown"] is (item["speaker"] == "unknown")  # as POST /predict says it
        assert item["file"] == str(clip)
        assert sorted(item["scores"]) == ["David", "Steve"]
        assert item["confidence"] == max(item["scores"].values())
        best = max(item["scores"], key=item["scores"].get)
        assert best == clip.parent.name
        assert item["speaker"] == (best if item["confidence"] >= threshold else "unknown")
    assert results[2] == {"file": str(broken), "error": "clip is empty (0 bytes)"}


def test_predict_prints_speaker_and_confidence(
    capsys: pytest.CaptureFixture[str], trained: tuple[Path, dict[str, Any]], held_out: Path
) -> None:
    model, _ = trained
    clips = [str(c) for c in sorted(held_out.glob("[DS]*/*.wav"))]  # David's and Steve's
    code, out, _ = _run(capsys, "predict", str(model), *clips, "--json")
    item = next(i for i in json.loads(out) if i["unknown_reason"] is None)  # a named clip
    clip = item["file"]
    code_text, text, _ = _run(capsys, "predict", str(model), clip)

    assert (code, code_text) == (0, 0)
    assert text == f"{clip}: {item['speaker']} ({item['confidence']:.3f})\n"


def test_train_prints_a_summary(
    capsys: pytest.CaptureFixture[str], demo_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"

    code, text, _ = _run(
        capsys, "train", str(demo_data), "--out", str(out), "--candidates", "1", "--epochs", "5",
        "--jobs", "1", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip

    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"wrote {out}  (2 speakers: David, Steve)"
    assert lines[1] == "clips: 24 used, 0 skipped, 24 decoded"
    assert lines[2] == "network: 60-6-2 (hidden width chosen for 2 speakers)"
    assert lines[3].startswith("epochs: ")
    assert lines[-1].startswith("time: ")
    # One cache file for the clips and one for each of their 4 degraded copies and 2 crops.
    assert len(list((tmp_path / "cache").iterdir())) == 1 + TrainConfig().copies_per_clip


def test_train_reads_linked_subfolders_and_lists_a_link_that_loops_or_leads_nowhere(
    capsys: pytest.CaptureFixture[str], demo_data: Path, tmp_path: Path
) -> None:
    data = data_with_a_linked_subfolder(demo_data, tmp_path)
    (data / "David" / "unmounted").symlink_to(tmp_path / "drive")
    (data / "Steve" / "again").symlink_to(".")
    out = tmp_path / "model"

    code, text, err = _run(
        capsys, "train", str(data), "--out", str(out), "--candidates", "1", "--epochs", "5",
        "--jobs", "1", "--no-cache",
    )  # fmt: skip

    assert (code, err) == (0, "")
    assert text.splitlines()[1:4] == [
        "clips: 24 used, 2 skipped, 25 decoded",  # the link that leads nowhere was tried
        "  skipped David/unmounted: cannot read file: No such file or directory",
        "  skipped Steve/again: a link back to a folder it lies in, not followed",
    ]


def test_train_scores_no_held_out_clip_with_a_training_clips_bytes_and_warns_with_the_count(
    capsys: pytest.CaptureFixture[str], demo_data: Path, stranger_data: Path, tmp_path: Path
) -> None:
    """A clip the model learnt from, scored as held out, inflates its figures unsaid."""
    held = tmp_path / "held"
    write_demo_data(held, clips_per_voice=2, seed=1)
    shutil.copy(demo_data / "Steve" / "hello_000.wav", held / "Steve" / "copy.wav")
    shutil.copy(demo_data / "Steve" / "hello_000.wav", held / "Steve" / "copy2.wav")
    strangers = Path(shutil.copytree(stranger_data, tmp_path / "strangers"))
    shutil.copy(demo_data / "David" / "hello_001.wav", strangers / "Stranger" / "david.wav")
    out = tmp_path / "model"

    code, _, err = _run(
        capsys, "train", str(demo_data), "--out", str(out), "--test-dir", str(held),
        "--unknown-dir", str(strangers), "--candidates", "1", "--epochs", "5", "--jobs", "1",
        "--no-cache",
    )  # fmt: skip

    assert code == 0
    assert err == (
        f"voiceid train: warning: test_dir={str(held)!r}: 2 clip(s) have the same bytes as clips "
        "the model learnt from: skipped, not scored\n"
        f"voiceid train: warning: unknown_dir={str(strangers)!r}: 1 clip(s) have the same bytes "
        "as clips the model learnt from: skipped, not scored\n"
    )
    report = json.loads((out / "report.json").read_text())
    learnt = "a clip the model learnt from: not scored"
    assert report["test"]["skipped"] == [
        {"file": "Steve/copy.wav", "error": f"the same bytes as 'Steve/hello_000.wav', {learnt}"},
        {"file": "Steve/copy2.wav", "error": f"the same bytes as 'Steve/hello_000.wav', {learnt}"},
    ]
    assert report["test"]["n"] == 4
    assert report["unknown"]["skipped"] == [
        {"file": "Stranger/david.wav",
         "error": f"the same bytes as 'David/hello_001.wav', {learnt}"},
    ]  # fmt: skip
    assert report["unknown"]["n"] == 6


def test_a_cache_folder_that_cannot_be_written_is_one_warning_line(
    capsys: pytest.CaptureFixture[str], demo_data: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = tmp_path / "features.parquet"

    code, stdout, err = _run(capsys, "features", str(demo_data), "--out", str(out),
                             "--cache-dir", str(blocker), "--jobs", "1")  # fmt: skip

    assert code == 0
    assert stdout.startswith(f"wrote {out}: 24 files")
    assert err == (
        f"voiceid features: warning: feature cache {str(blocker)!r} is not writable (File "
        "exists); continuing without it\n"
    )


def test_train_refuses_a_single_speaker(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_demo_data(data, clips_per_voice=4, voices=[STRANGER])

    code, out, err = _run(capsys, "train", str(data), "--out", str(tmp_path / "m"), "--no-cache")

    assert (code, out) == (2, "")
    assert err == (
        f"voiceid train: error: '{data}' holds 1 speaker folder(s); at least 2 are needed\n"
    )


def test_train_refuses_speaker_folders_the_service_would_take_for_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    for speaker in ("George", "george", "jackson"):
        (data / speaker).mkdir(parents=True)
        (data / speaker / "0.wav").write_bytes(encode(tone(seconds=1.0)))

    code, out, err = _run(capsys, "train", str(data), "--out", str(tmp_path / "m"), "--no-cache")

    assert (code, out) == (2, "")
    assert err == (
        f"voiceid train: error: speaker folders 'George' and 'george' of '{data}' read as one "
        "name, which the service could not tell apart: rename one, or merge their folders if "
        "they are one speaker\n"
    )


def test_train_refuses_a_bad_hidden_width_naming_it(
    capsys: pytest.CaptureFixture[str], demo_data: Path, tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "train", str(demo_data), "--out", str(tmp_path / "m"),
                          "--hidden", "0")  # fmt: skip

    assert (code, out) == (2, "")
    assert err == (
        "voiceid train: error: hidden=0 must be a whole number from 1 to 1024; leave it out "
        "(None) to choose the width from the speaker count\n"
    )
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--seed", "4294967296"], "seed=4294967296 must be a whole number from 0 to 4294967295"),
        (["--candidates", "65"], "candidates=65 must be a whole number from 1 to 64"),
    ],
)
def test_train_refuses_a_value_keras_or_memory_cannot_take_before_reading_a_clip(
    capsys: pytest.CaptureFixture[str], demo_data: Path, tmp_path: Path, option: list[str],
    message: str,
) -> None:  # fmt: skip
    code, out, err = _run(capsys, "train", str(demo_data), "--out", str(tmp_path / "m"),
                          "--cache-dir", str(tmp_path / "cache"), *option)  # fmt: skip

    assert (code, out, err) == (2, "", f"voiceid train: error: {message}\n")
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "cache").exists()


def test_predict_reads_a_clip_on_stdin_from_a_dash(
    capsys: pytest.CaptureFixture[str], trained: tuple[Path, dict[str, Any]], held_out: Path
) -> None:
    """``arecord -f S16_LE -r 16000 -d 2 -t wav | voiceid predict MODEL -``."""
    model, _ = trained
    clip = held_out / "Steve" / "hello_000.wav"
    _, from_file, _ = _run(capsys, "predict", str(model), str(clip))

    with stdin_from(clip):
        code, out, _ = _run(capsys, "predict", str(model), "-")

    assert code == 0
    assert out == from_file.replace(f"{clip}: ", "-: ")


def test_predict_given_a_web_address_says_to_download_it(
    capsys: pytest.CaptureFixture[str], trained: tuple[Path, dict[str, Any]]
) -> None:
    model, _ = trained

    code, out, _ = _run(capsys, "predict", str(model), "https://example.org/hello.wav")

    assert code == 1
    assert out == (
        "https:/example.org/hello.wav: error: No such file or directory: voiceid reads files, "
        "not web addresses: download it first (curl -O)\n"
    )


def test_predict_refuses_a_missing_bundle(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"

    code, _, err = _run(capsys, "predict", str(missing), "clip.wav")

    assert code == 2
    assert err == (
        f"voiceid predict: error: model bundle '{missing}' does not exist or is not a folder\n"
    )


def test_demo_data_writes_the_voices(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "demo-data", str(tmp_path), "--clips", "2")
    code_stranger, out_stranger, _ = _run(
        capsys, "demo-data", str(tmp_path), "--clips", "1", "--stranger"
    )

    assert (code, code_stranger) == (0, 0)
    assert (
        out == f"Steve: 2 clips in {tmp_path / 'Steve'}\nDavid: 2 clips in {tmp_path / 'David'}\n"
    )
    assert out_stranger == f"Stranger: 1 clips in {tmp_path / 'Stranger'}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["David", "Steve", "Stranger"]


def test_convert_upgrades_an_old_bundle_and_says_where(
    capsys: pytest.CaptureFixture[str], trained_bundle: Path, tmp_path: Path
) -> None:
    old = make_format_1(Path(shutil.copytree(trained_bundle, tmp_path / "old")))

    code, out, _ = _run(capsys, "convert", str(old), "--out", str(tmp_path / "new"))

    assert (code, out) == (0, f"wrote {tmp_path / 'new'}\n")
    assert load_bundle(tmp_path / "new").version == load_bundle(trained_bundle).version


def test_predict_with_an_old_bundle_says_how_to_convert_it(
    capsys: pytest.CaptureFixture[str], trained_bundle: Path, tmp_path: Path
) -> None:
    old = make_format_1(Path(shutil.copytree(trained_bundle, tmp_path / "old")))

    code, _, err = _run(capsys, "predict", str(old), "clip.wav")

    assert code == 2
    assert err == (
        f"voiceid predict: error: bundle '{old}' is format version 1, but this voiceid reads "
        f"version 2: upgrade it with `voiceid convert {old}`, or train it again\n"
    )


# Without the train extra (a default install): simulated by making its modules unimportable.

INSTALL_HINT = (
    "pip install 'voiceid[train]' ('voiceid[gpu]' to train on a CUDA GPU; "
    "pip install -e '.[train]' in a checkout)"
)


@pytest.mark.parametrize("module", ["keras", "tensorflow", "matplotlib", "pyarrow"])
def test_train_without_the_train_extra_says_which_extra_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    module: str,
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails, as if absent

    code, out, err = _run(capsys, "train", str(tmp_path), "--out", str(tmp_path / "m"))

    assert (code, out) == (2, "")
    assert err == (
        f"voiceid train: error: voiceid train needs the training extra, which is not installed "
        f"(no module '{module}'): {INSTALL_HINT}\n"
    )
    assert not (tmp_path / "m").exists()


def test_features_without_pyarrow_says_which_extra_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)

    code, out, err = _run(capsys, "features", str(tmp_path), "--out", str(tmp_path / "t.parquet"))

    assert (code, out) == (2, "")
    assert err == (
        "voiceid features: error: voiceid features needs the training extra, which is not "
        f"installed (no module 'pyarrow'): {INSTALL_HINT}\n"
    )


def test_the_overview_lists_every_command_without_the_extras(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("keras", "tensorflow", "matplotlib", "pyarrow"):
        monkeypatch.setitem(sys.modules, module, None)

    with pytest.raises(SystemExit):
        main(["--help"])

    out = capsys.readouterr().out
    assert all(name in out for name in ("features", "train", "evaluate", "predict", "serve"))


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])

    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"voiceid {importlib.metadata.version('voiceid')}\n"


def test_convert_without_keras_says_which_extra_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "keras", None)

    code, _, err = _run(capsys, "convert", str(tmp_path))

    assert code == 2
    assert err.startswith("voiceid convert: error: voiceid convert needs the training extra")
    assert err.endswith(f"(no module 'keras'): {INSTALL_HINT}\n")


@pytest.mark.parametrize(
    ("module", "purpose"), [("keras", "training"), ("matplotlib", "drawing the training pictures")]
)
def test_importing_the_training_code_without_the_extra_is_a_project_error(
    monkeypatch: pytest.MonkeyPatch, module: str, purpose: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    for name in ("pipeline.model", "pipeline.plots"):
        monkeypatch.delitem(sys.modules, name, raising=False)  # imported afresh, then restored

    with pytest.raises(MissingExtraError) as error:
        importlib.import_module("pipeline.model" if module == "keras" else "pipeline.plots")

    assert str(error.value) == (
        f"{purpose} needs the training extra, which is not installed (no module '{module}'): "
        f"{INSTALL_HINT}"
    )


def test_the_commands_that_serve_and_predict_need_no_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for module in ("keras", "tensorflow", "matplotlib", "librosa", "pyarrow"):
        monkeypatch.setitem(sys.modules, module, None)
    _run(capsys, "demo-data", str(tmp_path), "--clips", "1")

    code, out, _ = _run(capsys, "predict", str(MODEL_DIR), *map(str, tmp_path.glob("*/*.wav")))

    assert code == 0
    assert out.count("\n") == 2


@pytest.mark.slow
def test_enrol_teaches_a_new_voice_and_forgets_one_with_no_new_voice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    written = write_demo_data(tmp_path / "clips", clips_per_voice=8, seed=3, voices=[STRANGER])
    paths = written[STRANGER.name]
    out = tmp_path / "taught"

    code, printed, err = _run(
        capsys, "enrol", str(MODEL_DIR), "Sam O-Neil", str(paths[0]), str(paths[1]),
        str(paths[0].parent), "--out", str(out), "--no-cache",
    )  # fmt: skip

    assert (code, err) == (0, "")
    assert printed.splitlines()[:4] == [
        f"wrote {out}  (3 speakers: David, Sam O-Neil, Steve)",
        "new clips: 8 used, 2 skipped",  # the folder's eight; the two named alone count once
        f"  skipped {paths[0]}: given more than once, counted once",
        f"  skipped {paths[1]}: given more than once, counted once",
    ]
    assert load_bundle(out).labels == ("David", "Sam O-Neil", "Steve")

    # --forget alone, with no new voice: the successor knows the others.
    code, printed, err = _run(capsys, "enrol", str(out), "--forget", "Steve", "--out",
                              str(tmp_path / "forgot"), "--no-cache")  # fmt: skip

    assert (code, err) == (0, "")
    assert printed.splitlines()[:2] == [
        f"wrote {tmp_path / 'forgot'}  (2 speakers: David, Sam O-Neil)",
        "new clips: 0 used, 0 skipped",
    ]
    assert load_bundle(tmp_path / "forgot").labels == ("David", "Sam O-Neil")


@pytest.mark.slow
def test_enrol_json_lists_the_skipped_clips(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    written = write_demo_data(tmp_path / "clips", clips_per_voice=4, seed=3, voices=[STRANGER])
    empty = tmp_path / "clips" / "empty.wav"
    empty.write_bytes(b"")

    code, printed, err = _run(
        capsys, "enrol", str(MODEL_DIR), "Sam", *map(str, written[STRANGER.name]), str(empty),
        "--out", str(tmp_path / "taught"), "--no-cache", "--json",
    )  # fmt: skip

    assert (code, err) == (0, "")
    result = json.loads(printed)
    assert result["labels"] == ["David", "Sam", "Steve"]
    assert result["skipped"] == [{"file": str(empty), "error": "clip is empty (0 bytes)"}]


@pytest.mark.slow
def test_enrol_lists_the_links_of_a_folder_of_takes_that_lead_nowhere_or_loop(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a data folder's: left out unsaid, a take moved away would go unnoticed."""
    monkeypatch.chdir(tmp_path)
    write_demo_data(tmp_path / "clips", clips_per_voice=4, seed=3, voices=[STRANGER])
    takes = tmp_path / "clips" / STRANGER.name
    (takes / "moved.wav").symlink_to(tmp_path / "gone.wav")
    (takes / "loop.wav").symlink_to("loop.wav")
    (takes / "all").symlink_to("..")

    code, printed, err = _run(capsys, "enrol", str(MODEL_DIR), "Sam", f"clips/{STRANGER.name}",
                              "--out", "taught", "--no-cache", "--json")  # fmt: skip

    assert (code, err) == (0, "")
    assert json.loads(printed)["skipped"] == [
        {"file": "clips/Stranger/all", "error": "a link back to a folder it lies in, not followed"},
        {"file": "clips/Stranger/loop.wav",
         "error": "cannot read file: Too many levels of symbolic links"},
        {"file": "clips/Stranger/moved.wav",
         "error": "cannot read file: No such file or directory"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["../x", "a.wav"], "speaker name '../x' holds a path separator '/'"),
        ([], "name a speaker and their clips, give --store, or --forget a speaker"),
        (["Sam"], "no clips given for 'Sam'"),
        (["Sam", "missing.wav"], "clip 'missing.wav' does not exist"),
        (["Sam", "/dev/null"], "clip '/dev/null' is neither a file nor a folder"),
        (
            ["Sam", "a.wav", "empty"],
            "folder 'empty' holds no audio file: expected files ending in one of .aac, .aif, "
            ".aiff, .au, .flac, .m4a, .mp3, .mp4, .oga, .ogg, .opus, .wav, .webm, .wma",
        ),
        (["--store", "nowhere"], "speaker store 'nowhere' is not a folder"),
        (["Sam", "loop.wav"], "clip 'loop.wav' is a link that leads to no file"),
    ],
)
def test_enrol_refuses_bad_arguments_with_the_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    (tmp_path / "empty" / "notes" / "take.txt").write_text("not a take")
    (tmp_path / "loop.wav").symlink_to("loop.wav")

    code, out, err = _run(capsys, "enrol", str(MODEL_DIR), *argv, "--out", "m")

    assert (code, out) == (2, "")
    assert err.startswith(f"voiceid enrol: error: {message}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["steve", "a.wav"],
         "speaker name 'steve' reads the same as 'Steve', a speaker of the model: use 'Steve' "
         "to add to that speaker, or a name that reads differently"),
        (["Ann", "a.wav", "--store", "store"],
         "new speakers 'Sam' and 'sam' read as one name, which the service could not tell "
         "apart: rename one, or give their clips under one name"),
    ],
)  # fmt: skip
def test_enrol_refuses_a_new_speaker_named_as_another_would_be_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.wav").write_bytes(encode(tone(seconds=1.0)))
    for name in ("Sam", "sam"):
        (tmp_path / "store" / name).mkdir(parents=True)
        (tmp_path / "store" / name / "0.wav").write_bytes(encode(tone(seconds=1.0)))

    code, out, err = _run(capsys, "enrol", str(MODEL_DIR), *argv, "--out", "m", "--no-cache")

    assert (code, out, err) == (2, "", f"voiceid enrol: error: {message}\n")
    assert not (tmp_path / "m").exists()


def test_a_misspelled_option_gets_the_commands_usage_and_the_option_it_resembles(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["train", str(tmp_path), "--out", str(tmp_path / "m"), "--epcohs", "10"])

    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert err.startswith("usage: voiceid train ")
    assert err.endswith(
        "voiceid train: error: unrecognized arguments: --epcohs 10; did you mean --epochs?\n"
    )


COMMAND_LIST = "features, train, evaluate, predict, timeline, demo-data, convert, enrol, serve"


@pytest.mark.parametrize(("given", "hint"), [("trian", "; did you mean train?"), ("xyz", "")])
def test_a_misspelled_command_gets_the_command_it_resembles_and_the_list(
    capsys: pytest.CaptureFixture[str], given: str, hint: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main([given, "data"])

    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert err.endswith(
        f"voiceid: error: no command {given!r}{hint} (the commands are {COMMAND_LIST})\n"
    )


def test_the_overview_says_what_voiceid_does_in_plain_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])

    out = capsys.readouterr().out
    assert caught.value.code == 0
    assert " ".join(out.split("\n\n")[1].split()) == (
        "Learn voices from a folder of recordings (one subfolder per speaker), then say which "
        "known voice speaks in a clip, a recording or a live stream. 'voiceid COMMAND --help' "
        "gives a command's options."
    )


def test_an_argument_like_no_option_gets_the_commands_usage_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["predict", str(MODEL_DIR), "clip.wav", "--zzzzzz"])

    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert err.startswith("usage: voiceid predict ")
    assert err.endswith("voiceid predict: error: unrecognized arguments: --zzzzzz\n")


def test_a_file_named_like_an_option_gets_how_to_give_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argparse reads it as an option, and said only that no clip was given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-take.wav").write_bytes(b"")

    with pytest.raises(SystemExit) as caught:
        main(["predict", str(MODEL_DIR), "-take.wav"])

    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert err.startswith("usage: voiceid predict ")
    assert err.endswith(
        "voiceid predict: error: the file '-take.wav' reads as an option: give it as "
        "./-take.wav, or after --\n"
    )


def test_predict_names_the_option_that_admits_a_longer_clip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clip = tmp_path / "long.wav"
    clip.write_bytes(encode(tone(seconds=3.0)))

    code, out, _ = _run(capsys, "predict", str(MODEL_DIR), str(clip), "--max-seconds", "2")

    assert code == 1
    assert out == (
        f"{clip}: error: clip is 3.00 s long; the maximum is 2 s: raise the limit with "
        "--max-seconds\n"
    )


def test_predict_given_folders_answers_each_clip_in_them_and_says_which_hold_none(
    capsys: pytest.CaptureFixture[str], demo_data: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "takes"
    empty.mkdir()
    clips = sorted(demo_data.glob("*/*.wav"))
    _, one_by_one, _ = _run(capsys, "predict", str(MODEL_DIR), *map(str, clips))

    code, out, _ = _run(capsys, "predict", str(MODEL_DIR), str(demo_data), str(empty))

    assert code == 1
    assert out == one_by_one + (
        f"{empty}: error: is a folder holding no audio file: expected files ending in one of "
        ".aac, .aif, .aiff, .au, .flac, .m4a, .mp3, .mp4, .oga, .ogg, .opus, .wav, .webm, .wma\n"
    )


def test_predict_says_why_a_clip_is_unknown(
    capsys: pytest.CaptureFixture[str], stranger_data: Path
) -> None:
    clip = stranger_data / STRANGER.name / "hello_000.wav"

    _, printed, _ = _run(capsys, "predict", str(MODEL_DIR), str(clip), "--json")
    item = json.loads(printed)[0]
    code, out, _ = _run(capsys, "predict", str(MODEL_DIR), str(clip))

    assert code == 0
    assert (item["speaker"], item["unknown_reason"]) == ("unknown", "far")
    closest = max(item["scores"], key=item["scores"].get)
    assert out == (
        f"{clip}: unknown ({item['confidence']:.3f}, closest {closest}): too far from every "
        "voice the model knows; this voice is not one the model knows: teach it with a dozen "
        "takes to have it named\n"
    )


def test_predict_json_has_no_reason_for_a_named_speaker(
    capsys: pytest.CaptureFixture[str], demo_data: Path
) -> None:
    clip = demo_data / "Steve" / "hello_000.wav"

    code, out, _ = _run(capsys, "predict", str(MODEL_DIR), str(clip), "--json")

    assert code == 0
    assert (json.loads(out)[0]["speaker"], json.loads(out)[0]["unknown_reason"]) == ("Steve", None)


@pytest.mark.parametrize(
    ("reason", "words"),
    [("far", "too far from every voice the model knows"), ("unsure", "unsure between voices"),
     ("poor_recording", "the recording is too poor to judge")],
)  # fmt: skip
def test_every_reason_for_unknown_reads_as_words(reason: str, words: str) -> None:
    assert reason_in_words(reason) == words


def test_evaluate_warns_of_folders_named_like_a_label_in_another_case(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    write_demo_data(data, clips_per_voice=2, seed=1)
    (data / "Steve").rename(data / "steve")
    (data / "David").rename(data / "dAVID")

    code, out, err = _run(capsys, "evaluate", str(MODEL_DIR), str(data), "--jobs", "1")

    assert code == 0
    assert err == "".join(
        f"voiceid evaluate: warning: folder {folder!r} matches no label, only {label!r} in "
        "another case: its clips count as unknown speakers (labels are case-sensitive; rename "
        "the folder)\n"
        for folder, label in (("dAVID", "David"), ("steve", "Steve"))
    )
    assert out.splitlines()[0] == "named right n/a: no clips of the model's speakers"


def test_serve_refuses_a_model_that_does_not_load(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: pytest.fail("the server started"))
    monkeypatch.setenv("VOICEID_MODEL_DIR", "")  # recorded, so teardown removes what serve sets
    missing = tmp_path / "famly"

    code, _, err = _run(capsys, "serve", "--model", str(missing))

    assert code == 2
    assert err == (
        f"voiceid serve: error: model bundle '{missing}' does not exist or is not a folder "
        "(--model or VOICEID_MODEL_DIR names the model to serve; with VOICEID_MODELS_ROOT set, "
        "the server starts without one)\n"
    )


def test_serve_with_a_models_root_starts_without_a_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: started.update(kw))
    monkeypatch.setenv("VOICEID_MODEL_DIR", "")
    monkeypatch.setenv("VOICEID_ACTIVE_MODEL_FILE", "")
    monkeypatch.setenv("_VOICEID_SUPERVISOR_PID", "")  # recorded: teardown removes what serve sets
    monkeypatch.setenv("VOICEID_MODELS_ROOT", str(tmp_path))
    monkeypatch.setenv("VOICEID_PORT", str(free_port()))  # serve checks that it may listen

    assert main(["serve", "--model", str(tmp_path / "later")]) == 0
    assert started["factory"] is True


def test_a_runner_up_named_where_the_top_voice_is_far_says_which_voice_scored_higher() -> None:
    from voiceid.cli import _answer

    named = {"speaker": "David", "confidence": 0.27, "scores": {"David": 0.27, "Steve": 0.73},
             "unknown_reason": None}  # fmt: skip

    assert _answer(named) == (
        "David (0.270): among David's recordings, far from those of Steve, who scored 0.730"
    )
    assert _answer(named | {"speaker": "Steve", "confidence": 0.73}) == "Steve (0.730)"


def test_a_reader_that_stops_reading_gets_no_traceback(tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(encode(tone(seconds=1.0)))
    command = [sys.executable, "-m", "voiceid", "predict", str(MODEL_DIR), str(clip)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # as `| head -c 0` would, before the command writes a byte

    _, err = proc.communicate(timeout=120)

    assert (proc.returncode, err) == (128 + signal.SIGPIPE, b"")


@pytest.mark.parametrize(
    ("text", "shown"), [("inf", "inf"), ("1e308", "1e+308"), ("nan", "nan"), ("-1", "-1.0")]
)
@pytest.mark.parametrize("command", ["train", "features", "evaluate", "predict", "timeline"])
def test_every_command_refuses_a_limit_on_length_that_is_no_sane_number_of_seconds(
    capsys: pytest.CaptureFixture[str], demo_data: Path, tmp_path: Path, command: str,
    text: str, shown: str,
) -> None:  # fmt: skip
    clip = tmp_path / "clip.wav"
    clip.write_bytes(encode(tone(seconds=1.0)))
    given = {"train": [str(demo_data), "--out", str(tmp_path / "out")],
             "features": [str(demo_data), "--out", str(tmp_path / "out")],
             "evaluate": [str(MODEL_DIR), str(demo_data)], "predict": [str(MODEL_DIR), str(clip)],
             "timeline": [str(MODEL_DIR), str(clip)]}  # fmt: skip

    last = "--no-cache" if command in ("train", "features") else "--json"
    code, out, err = _run(capsys, command, *given[command], "--max-seconds", text, last)

    assert (code, out) == (2, "")
    assert err == (
        f"voiceid {command}: error: max_seconds={shown} must be a number of seconds above 0 "
        "and at most 86400\n"
    )
    assert not (tmp_path / "out").exists()


def test_ctrl_c_ends_a_command_with_one_line_and_the_status_of_sigint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "predict", interrupted)

    code, out, err = _run(capsys, "predict", str(MODEL_DIR), "clip.wav")

    assert (code, out, err) == (128 + signal.SIGINT, "", "voiceid predict: interrupted\n")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "voiceid evaluate: error: no usable clips in '{d}': Steve/a.wav: clip is empty (0 "
             "bytes); Steve/b.wav: clip is empty (0 bytes)"),
        (["--jobs", "0"], "voiceid evaluate: error: jobs=0 must be a positive integer"),
        (["--jobs", "-3"], "voiceid evaluate: error: jobs=-3 must be a positive integer"),
    ],
)  # fmt: skip
def test_evaluate_without_a_usable_clip_or_with_bad_jobs_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    (tmp_path / "Steve").mkdir()
    (tmp_path / "Steve" / "a.wav").write_bytes(b"")
    (tmp_path / "Steve" / "b.wav").write_bytes(b"")
    code, out, err = _run(capsys, "evaluate", str(MODEL_DIR), str(tmp_path), *extra)
    assert (code, out) == (2, "")
    assert err == message.format(d=tmp_path) + "\n"


def test_sigterm_ends_a_command_with_one_line_and_the_status_of_sigterm(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`docker stop` sends SIGTERM, which a command running as a container's PID 1 would
    ignore until docker killed it after its grace period (exit 137, no word)."""

    def stopped(args: object) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setitem(cli.COMMANDS, "predict", stopped)
    before = signal.getsignal(signal.SIGTERM)

    code, out, err = _run(capsys, "predict", str(MODEL_DIR), "clip.wav")

    assert (code, out, err) == (128 + signal.SIGTERM, "", "voiceid predict: stopped (SIGTERM)\n")
    assert signal.getsignal(signal.SIGTERM) is before


# Runs `voiceid enrol` with its work replaced by a wait that never ends, as a hung job's would.
_HUNG_ENROL = """
import signal, sys
import pipeline.enrol
from voiceid import cli
cli.require_training_stack = lambda command: None
pipeline.enrol.enrol = lambda *args, **kwargs: signal.pause()
sys.exit(cli.main(sys.argv[1:]))
"""


def test_enrol_with_a_time_limit_ends_itself_however_stuck(tmp_path: Path) -> None:
    """POST /train's process stops at its time limit even when no server is left to stop it."""
    (tmp_path / "store").mkdir()
    store, out = str(tmp_path / "store"), str(tmp_path / "out")
    command = [sys.executable, "-c", _HUNG_ENROL, "enrol", str(MODEL_DIR), "--store", store,
               "--out", out, "--time-limit", "1"]  # fmt: skip

    ended = subprocess.run(command, capture_output=True, timeout=120, check=False)

    assert (ended.returncode, ended.stderr) == (-signal.SIGALRM, b"")


@pytest.mark.parametrize("limit", ["0", "-5", "nan"])
def test_enrol_refuses_a_time_limit_that_is_no_number_of_seconds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, limit: str
) -> None:
    code = main(["enrol", str(MODEL_DIR), "--store", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--time-limit", limit])  # fmt: skip

    assert code == 2
    assert capsys.readouterr().err == (
        f"voiceid enrol: error: --time-limit={float(limit)!r} must be a positive number of "
        "seconds\n"
    )
