"""Feature tables on the local engine: the rows equal folder extraction's, and train reads them."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline import table
from pipeline.bundle import load_bundle
from pipeline.config import TrainConfig
from pipeline.dataset import Degradation, extract_features, scan_folder
from pipeline.errors import DatasetError, ParameterError
from pipeline.features import FEATURE_VERSION
from pipeline.network import ARRAY_NAMES
from pipeline.table import TableOptions, read_feature_table, write_feature_table
from pipeline.train import TrainOptions, feature_config_for, train
from tests.helpers import data_with_a_linked_subfolder
from tests.pipeline.table_helpers import SKIPPED, build_corpus
from tests.signals import PNG_BYTES, encode, harmonics
from voiceid.cli import main

NO_CACHE = TableOptions(jobs=1)
COPIES = TrainConfig().augment_copies  # the table's default: what training augments with


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> Path:
    return build_corpus(tmp_path_factory.mktemp("corpus"), demo_data)


@pytest.fixture(scope="module")
def local_table(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("table") / "features.parquet"
    write_feature_table(str(corpus), out, NO_CACHE)
    return out


def _rows(path: Path) -> pa.Table:
    return pq.read_table(path)


@pytest.mark.requires_ffmpeg  # the not-audio file's message names ffmpeg
def test_rows_are_folder_extractions_rows(corpus: Path, local_table: Path) -> None:
    recordings = scan_folder(corpus)
    cfg = feature_config_for(recordings, None)
    clean = extract_features(recordings, cfg, jobs=1)
    rows = _rows(local_table).to_pydict()

    assert rows["path"] == [r.path.relative_to(corpus).as_posix() for r in recordings]
    assert rows["speaker"] == [r.speaker for r in recordings]
    skipped = {p: e for p, e in zip(rows["path"], rows["error"], strict=True) if e is not None}
    assert skipped == SKIPPED
    assert [(str(r.path.relative_to(corpus)), e) for r, e in clean.skipped] == list(SKIPPED.items())
    kept = [f for f, e in zip(rows["features"], rows["error"], strict=True) if e is None]
    assert np.array_equal(np.array(kept, dtype=np.float32), clean.features)  # bit for bit
    copies = [d for d in rows["degraded"] if d is not None]
    assert len(copies) == len(kept) and {len(c) for c in copies} == {COPIES}
    for copy in range(COPIES):
        degraded = extract_features(clean.recordings, cfg, jobs=1, degradation=Degradation(0, copy))
        made = [c[copy] for c in copies if c[copy] is not None]
        assert len(made) == len(degraded.recordings)
        assert np.array_equal(np.array(made, dtype=np.float32), degraded.features), copy


def test_schema_metadata_and_file_facts(corpus: Path, local_table: Path) -> None:
    rows, info = read_feature_table(local_table)

    assert rows.schema.names == [
        "path", "speaker", "sha256", "sample_rate", "duration_s", "features", "error", "degraded",
    ]  # fmt: skip
    # each band's mean, then its 80th and 20th percentiles over the frames
    assert rows.schema.field("features").type == pa.list_(pa.float32(), 246)
    assert rows.schema.field("degraded").type == pa.list_(pa.list_(pa.float32(), 246))
    meta = json.loads(rows.schema.metadata[b"voiceid"])
    assert meta == {
        "format_version": 1,
        "feature_config": info.cfg.to_dict(),
        "feature_version": FEATURE_VERSION,
        "max_seconds": 60.0,
        "fmax_derived": True,
        "degrade_seed": 0,
        "degraded_copies": COPIES,
        "data": str(corpus),
        "files": 29,
    }
    assert info.cfg.fmax == 3800.0  # the 8 kHz FLAC: 0.95 * 8000 / 2
    by_path = {r["path"]: r for r in rows.to_pylist()}
    flac = by_path["David/sessions/8k.flac"]
    assert (flac["sample_rate"], flac["duration_s"]) == (8000, 1.0)
    assert flac["sha256"] == hashlib.sha256((corpus / flac["path"]).read_bytes()).hexdigest()
    not_audio = by_path["Steve/not-audio.wav"]
    assert (not_audio["sample_rate"], not_audio["duration_s"], not_audio["features"]) == (
        None, None, None,
    )  # fmt: skip
    assert by_path["Steve/silent.wav"]["sample_rate"] == 16_000
    assert "notes.txt" not in " ".join(by_path) and ".hidden/x.wav" not in by_path


def test_process_pool_and_warm_cache_give_the_same_table(
    corpus: Path, local_table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(table, "PARALLEL_MIN_FILES", 1)
    cache = tmp_path / "cache"
    pooled = tmp_path / "pooled.parquet"
    write_feature_table(str(corpus), pooled, TableOptions(jobs=2, cache_dir=cache))
    cached = tmp_path / "cached.parquet"
    decoded: list[bytes] = []
    extract_row = table.extract_row

    def counted(data: bytes, settings: table.RowSettings) -> table.FileRow:
        decoded.append(data)
        return extract_row(data, settings)

    monkeypatch.setattr(table, "extract_row", counted)
    write_feature_table(str(corpus), cached, TableOptions(jobs=1, cache_dir=cache))

    expected = _rows(local_table)
    assert _rows(pooled).equals(expected, check_metadata=True)
    assert _rows(cached).equals(expected, check_metadata=True)
    assert decoded == [PNG_BYTES]  # undecodable is not cached: ffmpeg may be installed later
    # the table filled training's own cache files, which training on the folder then reads
    recordings = scan_folder(corpus)
    cfg = feature_config_for(recordings, None)
    assert extract_features(recordings, cfg, jobs=1, cache_dir=cache).decoded == 1


def test_an_unwritable_cache_warns_and_the_table_is_written(
    corpus: Path, local_table: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = tmp_path / "features.parquet"

    with pytest.warns(UserWarning, match=r"feature cache '.*a-file' is not writable"):
        write_feature_table(str(corpus), out, TableOptions(jobs=1, cache_dir=blocker))

    assert _rows(out).equals(_rows(local_table), check_metadata=True)


def test_train_from_table_is_train_from_folder(
    corpus: Path, local_table: Path, tmp_path: Path, tiny_train_config: TrainConfig
) -> None:
    # A table holds degraded copies but no crops: the two agree when training makes none.
    opts = TrainOptions(train=dataclasses.replace(tiny_train_config, crops=0), jobs=1)
    from_folder = train(corpus, tmp_path / "folder", opts)
    from_table = train(local_table, tmp_path / "table", opts)

    for key in ("labels", "skipped", "split", "clips_per_speaker", "metrics", "history",
                "validation", "validation_degraded"):  # fmt: skip
        assert from_table[key] == from_folder[key], key
    assert from_table["files"] == from_folder["files"] | {"decoded": 0}
    folder, table_ = load_bundle(tmp_path / "folder"), load_bundle(tmp_path / "table")
    assert table_.feature_config == folder.feature_config
    assert table_.threshold == folder.threshold
    assert table_.metadata.training == folder.metadata.training
    for name in ARRAY_NAMES:  # the weights and the normalisation, bit for bit
        assert np.array_equal(getattr(table_.network, name), getattr(folder.network, name)), name
    # The same copies, made under the same conditions, give the same matched open sets.
    assert table_.metadata.open_set.matched == folder.metadata.open_set.matched


def test_a_table_counts_a_recording_given_twice_once_as_a_folder_does(
    demo_data: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    shutil.copy(data / "Steve" / "hello_000.wav", data / "David" / "stolen.wav")
    write_feature_table(str(data), tmp_path / "t.parquet", NO_CACHE)

    feats = table.training_features(tmp_path / "t.parquet", fmax=None, max_seconds=60.0,
                                    degrade_seed=0, degraded_copies=COPIES)  # fmt: skip

    from_folder = extract_features(scan_folder(data), feats.cfg, jobs=1)
    assert feats.extraction.skipped_files(Path()) == [  # David's folder comes first
        {
            "file": "Steve/hello_000.wav",
            "error": "the same bytes as 'David/stolen.wav', counted once",
        }
    ]
    assert from_folder.skipped_files(data) == [
        {"file": "Steve/hello_000.wav", "error": f"the same bytes as "
         f"{str(data / 'David' / 'stolen.wav')!r}, counted once"}
    ]  # fmt: skip
    np.testing.assert_array_equal(feats.extraction.features, from_folder.features)
    assert [len(c.recordings) for c in feats.degraded or []] == [24] * COPIES


@pytest.mark.parametrize("batch_rows", [5, table.BATCH_ROWS])  # the copy in a later batch, or not
def test_a_tables_row_for_a_file_with_an_earlier_ones_bytes_skips_it_naming_that_one(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    """A table holds what training learns from: a recording's features twice in it would weigh
    double for any reader of the table, as they would in folder training."""
    monkeypatch.setattr(table, "BATCH_ROWS", batch_rows)
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    shutil.copy(data / "Steve" / "hello_000.wav", data / "David" / "stolen.wav")
    (data / "Steve" / "quiet.wav").write_bytes(encode(np.zeros(16_000, dtype=np.float32)))
    (data / "Steve" / "quiet2.wav").write_bytes(encode(np.zeros(16_000, dtype=np.float32)))
    out = tmp_path / "t.parquet"

    summary = write_feature_table(str(data), out, NO_CACHE)

    rows = _rows(out).to_pydict()
    copy, first = rows["path"].index("Steve/hello_000.wav"), rows["path"].index("David/stolen.wav")
    silent = "clip is silent: peak level -inf dBFS is below -80 dBFS"
    assert summary.skipped == [
        ("Steve/hello_000.wav", "the same bytes as 'David/stolen.wav', counted once"),
        ("Steve/quiet.wav", silent),  # a copy of a refused file is refused for its own reason
        ("Steve/quiet2.wav", silent),
    ]
    assert (rows["features"][copy], rows["degraded"][copy]) == (None, None)
    assert rows["features"][first] is not None
    assert rows["sha256"][copy] == rows["sha256"][first]  # what the file is, still said
    assert len(rows["path"]) == summary.files == 27


@pytest.mark.parametrize("batch_rows", [3, table.BATCH_ROWS])  # the loop at a batch's edge, or not
def test_a_table_reads_linked_subfolders_and_has_a_row_for_a_link_that_loops(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    """As folder training: a link back up is neither followed, nor given to an engine, which
    would read a folder, but has a row saying why it is skipped."""
    monkeypatch.setattr(table, "BATCH_ROWS", batch_rows)
    data = data_with_a_linked_subfolder(demo_data, tmp_path)
    (data / "David" / "all").symlink_to("..")
    (data / "Steve" / "again").symlink_to(".")
    out = tmp_path / "t.parquet"

    summary = write_feature_table(str(data), out, NO_CACHE)

    rows = _rows(out).to_pydict()
    loops = "a link back to a folder it lies in, not followed"
    assert summary.skipped == [("David/all", loops), ("Steve/again", loops)]
    assert (summary.files, len(rows["path"])) == (26, 26)
    assert rows["path"][:3] == ["David/all", "David/hello_000.wav", "David/hello_001.wav"]
    assert rows["path"][11:15] == ["David/more/hello_010.wav", "David/more/hello_011.wav",
                                   "Steve/again", "Steve/hello_000.wav"]  # fmt: skip
    assert [(p, e) for p, e in zip(rows["path"], rows["error"], strict=True) if e] == [
        ("David/all", loops),
        ("Steve/again", loops),
    ]
    assert rows["features"][0] is None and rows["features"][11] is not None


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (TrainOptions(fmax=3000.0),
         "fmax=3000.0 differs from the feature table's fmax=3800.0: extract the table again "
         "with voiceid features --fmax"),
        (TrainOptions(max_seconds=10.0),
         "max_seconds=10.0 differs from the feature table's max_seconds=60.0: extract the "
         "table again with --max-seconds"),
        (TrainOptions(train=TrainConfig(seed=3)),
         "seed=3 needs degraded copies drawn with seed 3, and the feature table's were drawn "
         "with seed 0: train with --no-augment or --seed 0, or extract again with "
         "--degrade-seed 3"),
        (TrainOptions(train=TrainConfig(augment_copies=5)),
         "training augments with 5 degraded copies of each clip, and the feature table has 4: "
         "extract again with --degraded-copies 5"),
    ],
)  # fmt: skip
def test_train_refuses_a_table_made_otherwise(
    local_table: Path, tmp_path: Path, opts: TrainOptions, message: str
) -> None:
    with pytest.raises(ParameterError) as caught:
        train(local_table, tmp_path / "model", opts)
    assert str(caught.value) == message


def test_a_table_without_copies_trains_only_without_augmenting(
    corpus: Path, tmp_path: Path, tiny_train_config: TrainConfig
) -> None:
    out = tmp_path / "plain.parquet"
    summary = write_feature_table(str(corpus), out, TableOptions(jobs=1, degraded_copies=0))
    assert summary.degraded == 0
    with pytest.raises(ParameterError) as caught:
        train(out, tmp_path / "model", TrainOptions())
    assert str(caught.value) == (
        "the feature table has no degraded copies (made with --degraded-copies 0): train with "
        "--no-augment, or extract again with --degraded-copies 4"
    )
    no_augment = TrainConfig(candidates=2, max_epochs=20, patience=5, augment=False)
    report = train(out, tmp_path / "model", TrainOptions(train=no_augment))
    assert report["metrics"]["n_train_degraded"] == 0


def test_refuses_files_that_are_not_feature_tables(local_table: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.parquet"
    text.write_text("hello")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1]}), plain)
    other = tmp_path / "other.parquet"
    rows = _rows(local_table)
    meta = json.loads(rows.schema.metadata[b"voiceid"]) | {"feature_version": 1}
    pq.write_table(rows.replace_schema_metadata({b"voiceid": json.dumps(meta)}), other)

    with pytest.raises(DatasetError, match=r"^'.*notes.parquet' is not a readable Parquet"):
        read_feature_table(text)
    with pytest.raises(DatasetError) as caught:
        read_feature_table(plain)
    assert str(caught.value) == f"{str(plain)!r} is a Parquet file but not a voiceid feature table"
    with pytest.raises(DatasetError) as caught:
        read_feature_table(other)
    assert str(caught.value) == (
        f"{str(other)!r} holds features of version 1; this voiceid computes version "
        f"{FEATURE_VERSION}: extract the table again"
    )


def _edit(table_path: Path, rows: pa.Table, meta: object) -> Path:
    """``rows`` written at ``table_path`` with ``meta`` (JSON, or raw bytes) as the metadata."""
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    pq.write_table(rows.replace_schema_metadata({b"voiceid": raw}), table_path)
    return table_path


def _with(rows: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return rows.set_column(rows.schema.get_field_index(name), name, values)


def _filled(rows: pa.Table, value: float) -> pa.Array:
    width = rows.schema.field("features").type.list_size
    return pa.array([[value] * width] * rows.num_rows, pa.list_(pa.float32(), width))


Edit = tuple[Callable[[pa.Table], pa.Table], Callable[[dict[str, Any]], object], str]
EDITS: dict[str, Edit] = {
    "not JSON": (lambda r: r, lambda m: b"{not json",
                 "has feature-table metadata that is not JSON: Expecting property name enclosed in "
                 "double quotes: line 1 column 2 (char 1)"),
    "a list": (lambda r: r, lambda m: [1, 2],
               "has feature-table metadata that is a JSON list, not an object: extract the table "
               "again"),
    "no seed": (lambda r: r, lambda m: {k: v for k, v in m.items() if k != "degrade_seed"},
                "has feature-table metadata without 'degrade_seed': extract the table again"),
    "version as text": (lambda r: r, lambda m: m | {"feature_version": str(FEATURE_VERSION)},
                        f"has feature-table metadata feature_version='{FEATURE_VERSION}', which "
                        "is not a whole number: extract the table again"),
    "copies as text": (lambda r: r, lambda m: m | {"degraded_copies": "4"},
                       "has feature-table metadata degraded_copies='4', which is not a whole "
                       "number: extract the table again"),
    "config null": (lambda r: r, lambda m: m | {"feature_config": None},
                    "has feature-table metadata feature_config=None, which is not an object: "
                    "extract the table again"),
    "too many copies": (lambda r: r, lambda m: m | {"degraded_copies": 10**6},
                        "has feature-table metadata training cannot use: "
                        "degraded_copies=1000000 must be a whole number from 0 to 32"),
    "no speaker": (lambda r: r.drop_columns(["speaker"]), lambda m: m,
                   "has no column 'speaker', which a feature table holds: extract the table again"),
    "fewer bands": (lambda r: r, lambda m: m | {"feature_config": m["feature_config"] | {
                        "band_spread": [], "cepstra": 0}},
                    "has a column 'features' of type fixed_size_list<element: float>[246]; a "
                    "feature table of its feature config holds fixed_size_list<item: float>[60] "
                    "there: extract the table again"),
    "speakers as numbers": (lambda r: _with(r, "speaker", pa.array(range(r.num_rows))),
                            lambda m: m,
                            "has a column 'speaker' of type int64; a feature table of its feature "
                            "config holds string there: extract the table again"),
    "no paths": (lambda r: _with(r, "path", pa.nulls(r.num_rows, pa.string())), lambda m: m,
                 "has 29 rows without a 'path': extract the table again"),
    "fewer copies": (lambda r: _with(r, "degraded", pc.list_slice(r.column("degraded"), 0, 2)),
                     lambda m: m,
                     "holds 25 rows with other than the 4 degraded copies its metadata gives: "
                     "extract the table again"),
    "NaN": (lambda r: _with(r, "features", _filled(r, float("nan"))), lambda m: m,
            "holds 29 rows whose features are not finite numbers of at most 10000 in size: "
            "extract the table again"),
    "1e38": (lambda r: _with(r, "features", _filled(r, 1e38)), lambda m: m,
             "holds 29 rows whose features are not finite numbers of at most 10000 in size: "
             "extract the table again"),
}  # fmt: skip


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_table_is_refused_naming_what_is_wrong(
    local_table: Path, tmp_path: Path, edit: str
) -> None:
    rows_of, meta_of, message = EDITS[edit]
    rows = _rows(local_table)
    meta = json.loads(rows.schema.metadata[b"voiceid"])
    edited = _edit(tmp_path / "edited.parquet", rows_of(rows), meta_of(meta))
    with pytest.raises(DatasetError) as caught:
        read_feature_table(edited)
    assert str(caught.value) == f"{str(edited)!r} {message}"


def test_a_table_with_an_empty_speaker_does_not_train(local_table: Path, tmp_path: Path) -> None:
    rows = _rows(local_table)
    speakers = ["", *rows.column("speaker").to_pylist()[1:]]
    edited = tmp_path / "edited.parquet"
    pq.write_table(_with(rows, "speaker", pa.array(speakers, pa.string())), edited)
    with pytest.raises(DatasetError) as caught:
        train(edited, tmp_path / "model", TrainOptions())
    assert str(caught.value) == (
        f"speaker folder '' of {str(edited)!r} is empty: rename the folder"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "spark"}, "engine='spark' must be 'local' or 'ray'"),
        ({"jobs": 0}, "jobs=0 must be a positive integer"),
        ({"ray_address": "auto"}, "ray_address='auto' needs engine='ray'"),
        ({"engine": "ray", "cache_dir": Path("c")},
         "cache_dir='c': only the local engine keeps a feature cache"),
        ({"max_seconds": float("inf")},
         "max_seconds=inf must be a number of seconds above 0 and at most 86400"),
        ({"degrade_seed": 2**32},
         "degrade_seed=4294967296 must be a whole number from 0 to 4294967295"),
        ({"degraded_copies": -1}, "degraded_copies=-1 must be a whole number from 0 to 32"),
        ({"degraded_copies": 100_000},
         "degraded_copies=100000 must be a whole number from 0 to 32"),
    ],
)  # fmt: skip
def test_options_name_the_bad_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError) as caught:
        TableOptions(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_ray_engine_without_ray_names_the_extra(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    monkeypatch.delitem(sys.modules, "pipeline.ray_engine", raising=False)
    monkeypatch.delattr(pipeline, "ray_engine", raising=False)  # left by an earlier import
    out = tmp_path / "t.parquet"
    with pytest.raises(ParameterError) as caught:
        write_feature_table(str(corpus), out, TableOptions(engine="ray"))
    assert str(caught.value) == (
        "engine='ray' needs Ray, which is not installed: pip install 'voiceid[ray]'"
    )
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_bad_data_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        write_feature_table(str(tmp_path / "absent"), tmp_path / "t.parquet")
    assert str(caught.value) == (
        f"data folder {str(tmp_path / 'absent')!r} does not exist or is not a folder"
    )
    with pytest.raises(DatasetError, match=r"^cannot open data URI 'nosuch://bucket/x': "):
        write_feature_table("nosuch://bucket/x", tmp_path / "t.parquet")


def test_a_uri_without_a_bucket_is_refused_before_listing(tmp_path: Path) -> None:
    # listing it would take each bucket for a speaker folder, less its first letter
    uri = "s3://?endpoint_override=127.0.0.1:1&scheme=http"
    with pytest.raises(DatasetError) as caught:
        write_feature_table(uri, tmp_path / "t.parquet")
    assert str(caught.value) == (
        "data URI 's3://?endpoint_override=127.0.0.1%3A1&scheme=http' names no bucket or "
        "folder: give the folder that holds the speaker folders (s3://BUCKET/PATH)"
    )


@pytest.mark.parametrize(
    ("layout", "out", "message"),
    [
        ({"notes.txt": b"keep"}, "notes.txt",
         "'{d}/notes.txt' exists and is not a voiceid feature table; refusing to replace it"),
        ({"tables/a": b""}, "tables", "'{d}/tables' is a folder: name the .parquet file to write"),
        ({"afile": b"keep"}, "afile/t.parquet",
         "cannot write a table at '{d}/afile/t.parquet': '{d}/afile' is a file, not a folder"),
    ],
)  # fmt: skip
def test_an_out_it_should_not_replace_is_refused_before_any_work(
    tmp_path: Path, layout: dict[str, bytes], out: str, message: str
) -> None:
    for name, content in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)

    with pytest.raises(DatasetError) as caught:
        write_feature_table(str(tmp_path / "absent"), tmp_path / out)  # no data: never reached

    assert str(caught.value) == message.format(d=tmp_path)
    assert {n: (tmp_path / n).read_bytes() for n in layout} == layout


def test_a_feature_table_may_be_replaced(local_table: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "features.parquet"
    out.write_bytes(local_table.read_bytes())

    write_feature_table(str(corpus), out, NO_CACHE)

    assert _rows(out).equals(_rows(local_table))


def test_a_file_name_that_is_not_utf8_is_a_row_named_with_its_bytes_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "data"
    for speaker in ("a", "b"):
        (corpus / speaker).mkdir(parents=True)
        (corpus / speaker / "0.wav").write_bytes(encode(harmonics(120.0, seconds=1.0)))
    (corpus / "a" / os.fsdecode(b"bad\xff.wav")).write_bytes(encode(harmonics(150.0)))
    (corpus / "a" / os.fsdecode(b"junk\xfe.wav")).write_bytes(PNG_BYTES)
    out = tmp_path / "t.parquet"

    code = main(["features", str(corpus), "--out", str(out), "--no-cache", "--jobs", "1"])

    printed = capsys.readouterr().out.splitlines()
    assert (code, printed[1]) == (
        0,
        "  skipped a/junk\\xfe.wav: cannot decode PNG image data: not a supported audio format",
    )
    paths = pq.read_table(out, columns=["path"]).column("path").to_pylist()
    assert paths == ["a/0.wav", "a/bad\\xff.wav", "a/junk\\xfe.wav", "b/0.wav"]


def test_uris_are_recorded_without_credentials() -> None:
    uri = "s3://AKIA:s3cr3t@bucket/data?endpoint_override=127.0.0.1:9000&secret_key=x&scheme=http"
    assert table._public_uri(uri) == (
        "s3://bucket/data?endpoint_override=127.0.0.1%3A9000&scheme=http"
    )


@pytest.mark.requires_ffmpeg  # the not-audio file's message names ffmpeg
def test_cli_writes_a_table_and_trains_from_it(
    corpus: Path, local_table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.parquet"
    code = main(["features", str(corpus), "--out", str(out), "--jobs", "1", "--no-cache",
                 "--json"])  # fmt: skip
    printed = json.loads(capsys.readouterr().out)

    assert code == 0
    assert _rows(out).equals(_rows(local_table), check_metadata=True)
    assert printed["files"] == 29 and printed["degraded"] == COPIES * 25
    assert printed["skipped"] == [{"file": p, "error": e} for p, e in SKIPPED.items()]
    code = main(["train", str(out), "--out", str(tmp_path / "m"), "--candidates", "1",
                 "--epochs", "5", "--json"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["files"]["decoded"] == 0


def test_a_table_where_no_file_can_be_made_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / ("x" * 300) / "t.parquet"  # a name longer than any file system takes

    with pytest.raises(DatasetError) as caught:
        write_feature_table(str(tmp_path / "absent"), out)  # no data: never reached

    assert str(caught.value) == f"cannot write a table at '{out}': File name too long"


def test_a_disk_that_fills_up_while_the_table_is_written_is_refused_naming_it(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:  # as pyarrow says it
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space "
                      "left on device")  # fmt: skip

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    out = tmp_path / "t.parquet"

    with pytest.raises(DatasetError) as caught:
        write_feature_table(str(demo_data), out, NO_CACHE)

    assert str(caught.value) == f"cannot write a table at '{out}': No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_table_write_removes_what_a_killed_one_left_an_hour_ago(
    demo_data: Path, tmp_path: Path
) -> None:
    """kill -9 runs no ``finally``: its temporary file, as big as the table, stays behind."""
    out = tmp_path / "t.parquet"
    killed, live = (tmp_path / f".t.parquet.tmp{pid}" for pid in (4_194_301, 4_194_302))
    for path in (killed, live):
        path.write_bytes(b"PAR1")
    os.utime(killed, (0, 0))  # written long ago: a live write writes more every few seconds

    write_feature_table(str(demo_data), out, NO_CACHE)

    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, out.name]
