"""Feature tables: one Parquet row per recording, written by the local engine or by Ray.

``write_feature_table(DATA, OUT)`` lists ``DATA/<speaker>/**`` (a local folder, or any URI that
pyarrow's filesystems open: ``s3://``, ``gs://``, ``hdfs://``), fixes the feature config before
anything is decoded, and streams one row per file to ``OUT``:

========== ================================================================================
path       the file's path relative to DATA (``/``-separated)
speaker    the speaker folder
sha256     of the file's bytes (null when the file could not be read)
sample_rate the file's own rate in Hz, from its header (null where libsndfile cannot read the
           header: formats only ffmpeg decodes, damaged files)
duration_s frames / sample_rate from the same header (null likewise)
features   the ``row_width`` float32 feature row (null for a skipped file)
error      null, or the reason the file is skipped, exactly as folder training words it (a
           file with an earlier usable one's bytes is skipped, naming it: a recording counts once)
degraded   the histograms of the file's ``degraded_copies`` degraded copies, copy 0 first
           (``dataset.degraded_copy`` with ``Degradation(degrade_seed, copy)``, as training
           makes them); an entry is null where that copy is unusable, the list null for a
           skipped file
========== ================================================================================

The schema's metadata (key ``voiceid``) holds the feature config, the feature version, the
longest clip accepted, the degrade seed and number of copies, and where the data came from: a
table is only read back by code of the same feature version, and training takes its config
from it.

Both engines call :func:`extract_row` on each file's bytes, the same decode and histogram code
folder training runs, so their rows are identical bit for bit. The driver keeps one batch of
rows, the file list and each usable file's sha256, never audio: its memory does not grow with
the corpus beyond those.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import sys
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import soundfile as sf
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from pipeline import dataset
from pipeline.audio import DEFAULT_MAX_SECONDS, check_max_seconds, decode
from pipeline.config import (
    FeatureConfig,
    TrainConfig,
    check_copies,
    check_jobs,
    check_seed,
    derived_feature_config,
    option,
)
from pipeline.dataset import (
    PARALLEL_MIN_FILES,
    Degradation,
    Extraction,
    FeatureCache,
    Recording,
    degraded_copy,
    process_pool,
    skip_reason,
)
from pipeline.errors import AudioError, DatasetError, ParameterError, VoiceIdError
from pipeline.features import FEATURE_VERSION, histogram
from pipeline.paths import file_in_the_way, remove_stale

__all__ = [
    "ENGINES",
    "TABLE_FORMAT_VERSION",
    "Batches",
    "DataSource",
    "FileRow",
    "RowSettings",
    "SourceFile",
    "TableInfo",
    "TableOptions",
    "TableSummary",
    "TrainingFeatures",
    "computed_columns",
    "extract_row",
    "open_source",
    "read_feature_table",
    "table_schema",
    "training_features",
    "write_feature_table",
]

TABLE_FORMAT_VERSION = 1  # bumped when the columns or the metadata change meaning
METADATA_KEY = b"voiceid"
BATCH_ROWS = 4096  # rows the driver holds before writing them: ~2 MB at 60 bands
ENGINES = ("local", "ray")
# What writing says when the disk will take no more: full, a quota, a file too big, read-only.
_DISK_REFUSALS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
Engine = Literal["local", "ray"]
# Query parameters of a URI that carry credentials: never written into a table.
SECRET_QUERY_KEYS = frozenset({"access_key", "secret_key", "session_token"})
# The largest feature value a table may hold: features are decibels, and 10 * log10 of any
# float64 power lies within +-3100 dB.
MAX_FEATURE_MAGNITUDE = 1e4


@dataclass(frozen=True)
class TableOptions:
    """How ``voiceid features`` builds a table. Each field's help text (see
    ``pipeline.config.option``) is what ``voiceid features --help`` shows for it; ``cache_dir``
    is an option with a default of its own there (training's cache), ``progress`` follows the
    terminal."""

    engine: Engine = option(
        "local", "local: processes on this machine; ray: Ray Data tasks (the voiceid[ray] extra)"
    )
    ray_address: str | None = option(
        None,
        "the Ray cluster to run on (HEAD:6379, ray://HEAD:10001, auto); default: a Ray started "
        "on this machine for the run",
    )
    jobs: int | None = option(
        None, "files decoded at once (default: every core here, or every core of the cluster)"
    )
    cache_dir: Path | None = None  # local engine: rows by content, in training's cache files
    fmax: float | None = option(
        None,
        "upper band edge in Hz (default: from the lowest sample rate among the files' headers, "
        "which reads every header first)",
    )
    max_seconds: float = option(DEFAULT_MAX_SECONDS, "longest clip accepted, in seconds")
    degrade_seed: int = option(
        TrainConfig().seed, "seed of the degraded copies: training's --seed must equal it"
    )
    degraded_copies: int = option(
        TrainConfig().augment_copies,
        "degraded copies of each clip, at least as many as training augments with; 0: none "
        "(such a table trains only with --no-augment)",
    )
    progress: bool = False

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ParameterError(f"engine={self.engine!r} must be 'local' or 'ray'")
        check_jobs("jobs", self.jobs)
        if self.ray_address is not None and self.engine != "ray":
            raise ParameterError(f"ray_address={self.ray_address!r} needs engine='ray'")
        if self.cache_dir is not None and self.engine != "local":
            raise ParameterError(
                f"cache_dir={str(self.cache_dir)!r}: only the local engine keeps a feature cache"
            )
        check_max_seconds(self.max_seconds)
        check_seed("degrade_seed", self.degrade_seed)
        check_copies("degraded_copies", self.degraded_copies)


# ---------------------------------------------------------------------------- one file's row


@dataclass(frozen=True)
class RowSettings:
    """What every worker needs to turn a file's bytes into its row."""

    cfg: FeatureConfig
    max_seconds: float
    degrade_seed: int
    degraded_copies: int

    def degradation(self, copy: int) -> Degradation:
        return Degradation(self.degrade_seed, copy)


class FileRow(NamedTuple):
    """The computed part of a table row; ``lasting``: whether ``error`` depends on the bytes alone
    (see ``dataset.skip_reason``), so that it may be cached."""

    sha256: str | None
    sample_rate: int | None
    duration_s: float | None
    features: np.ndarray | None
    error: str | None
    lasting: bool
    degraded: tuple[np.ndarray | None, ...]  # one entry per copy; empty for a skipped file
    degraded_errors: tuple[str | None, ...]


def probe(data: bytes) -> tuple[int | None, float | None]:
    """The original sample rate and duration from the file's header; None where unreadable."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError):
        return None, None
    rate, frames = int(info.samplerate), int(info.frames)
    return rate, (frames / rate if 0 < frames < 2**62 else None)


def extract_row(data: bytes, settings: RowSettings) -> FileRow:
    """Decode the file bytes ``data`` once; its histogram, and those of its degraded copies.

    The same decode, histogram and degraded copies as ``dataset.file_features``, so a table's
    rows equal the rows training extracts from a folder.
    """
    sha = hashlib.sha256(data).hexdigest()
    rate, duration = probe(data)
    cfg = settings.cfg
    try:
        clip = decode(data, sample_rate=cfg.sample_rate, max_seconds=settings.max_seconds)
        features = histogram(clip.samples, cfg)
    except AudioError as exc:
        error, lasting = skip_reason(exc)
        return FileRow(sha, rate, duration, None, error, lasting, (), ())
    copies: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for copy in range(settings.degraded_copies):
        y = degraded_copy(clip.samples, data, cfg.sample_rate, settings.degradation(copy))
        try:
            copies.append(histogram(y, cfg))
            errors.append(None)
        except AudioError as exc:  # a copy's sound may be too short once it is degraded
            copies.append(None)
            errors.append(str(exc))
    return FileRow(sha, rate, duration, features, None, True, tuple(copies), tuple(errors))


# ---------------------------------------------------------------------------- columns


def table_schema(n_bands: int, metadata: dict[str, Any] | None = None) -> pa.Schema:
    """The table's columns; ``metadata`` is stored as JSON under the key ``voiceid``."""
    histogram_type = pa.list_(pa.float32(), n_bands)
    schema = pa.schema(
        [
            pa.field("path", pa.string(), nullable=False),
            pa.field("speaker", pa.string(), nullable=False),
            pa.field("sha256", pa.string()),
            pa.field("sample_rate", pa.int32()),
            pa.field("duration_s", pa.float64()),
            pa.field("features", histogram_type),
            pa.field("error", pa.string()),
            pa.field("degraded", pa.list_(histogram_type)),
        ]
    )
    if metadata is None:
        return schema
    return schema.with_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})


def _histograms(values: Sequence[np.ndarray | None], n_bands: int) -> pa.Array:
    mask = np.array([v is None for v in values], dtype=bool)
    flat = np.zeros((len(values), n_bands), dtype=np.float32)
    for i, v in enumerate(values):
        if v is not None:
            flat[i] = v
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), n_bands, mask=pa.array(mask))


def _copies(rows: Sequence[FileRow], n_bands: int) -> pa.Array:
    offsets = np.cumsum([0, *(len(r.degraded) for r in rows)], dtype=np.int32)
    values = _histograms([h for r in rows for h in r.degraded], n_bands)
    skipped = pa.array([r.features is None for r in rows])
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=skipped)


def computed_columns(rows: Sequence[FileRow], n_bands: int) -> list[pa.Array]:
    """The columns after ``path`` and ``speaker``, in the schema's order."""
    return [
        pa.array([r.sha256 for r in rows], pa.string()),
        pa.array([r.sample_rate for r in rows], pa.int32()),
        pa.array([r.duration_s for r in rows], pa.float64()),
        _histograms([r.features for r in rows], n_bands),
        pa.array([r.error for r in rows], pa.string()),
        _copies(rows, n_bands),
    ]


# ---------------------------------------------------------------------------- where the data is


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One recording. The driver holds one per file for the whole run: kept small (slots, and
    each speaker's name stored once)."""

    rel: str  # relative to DATA, "/"-separated
    speaker: str
    location: str  # the path the source's filesystem opens
    problem: str | None = None  # why it is skipped unread (``dataset.Recording.problem``)


@dataclass(frozen=True)
class DataSource:
    """A data folder on some filesystem, and its recordings in ``dataset.scan_folder``'s order."""

    fs: pafs.FileSystem
    uri: str  # as given, less any credentials: what the table records
    files: list[SourceFile]
    local_root: Path | None  # the folder, when it is on this machine

    @property
    def remote_fs(self) -> pafs.FileSystem | None:
        """The filesystem to read through; None for a local folder (see ``read_file``)."""
        return None if self.local_root is not None else self.fs

    def lowest_sample_rate(self) -> int | None:
        """As ``dataset.lowest_sample_rate``: the lowest rate among headers libsndfile reads."""
        if self.local_root is not None:
            return dataset.lowest_sample_rate(Path(f.location) for f in self.files)
        rates = []
        for f in self.files:
            try:
                with self.fs.open_input_file(f.location) as handle:
                    rates.append(sf.info(handle).samplerate)
            except (sf.LibsndfileError, RuntimeError, OSError):
                continue
        return min(rates) if rates else None


def read_file(fs: pafs.FileSystem | None, location: str) -> bytes:
    """A file's bytes; ``fs=None`` reads a local path as folder training does, so that a file
    that cannot be read is skipped with the same words."""
    if fs is None:
        return Path(location).read_bytes()
    with fs.open_input_stream(location) as stream:
        return bytes(stream.read())


def _is_uri(data: str) -> bool:
    return "://" in data


def _public_uri(data: str) -> str:
    """``data`` without user:password and credential query parameters."""
    if not _is_uri(data):
        return data
    parts = urlsplit(data)
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in SECRET_QUERY_KEYS])
    # by hand: urlunsplit drops the '//' of a URI without a host ('s3://?endpoint_override=...')
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _remote_files(fs: pafs.FileSystem, root: str, uri: str) -> list[SourceFile]:
    """``dataset.scan_folder``'s rules on a pyarrow filesystem."""
    root = root.rstrip("/")
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    files = []
    for info in infos:
        rel = info.path[len(root) + 1 :]
        parts = rel.split("/")
        speaker = parts[0]
        if (
            info.type == pafs.FileType.File
            and len(parts) > 1
            and not speaker.startswith(".")
            and Path(rel).suffix.lower() in dataset.AUDIO_EXTENSIONS
        ):
            files.append(SourceFile(rel, sys.intern(speaker), info.path))
    if not files:
        raise dataset.no_recordings(uri)
    return sorted(files, key=lambda f: f.rel.split("/"))  # Path's order: part by part


def open_source(data: str) -> DataSource:
    """The recordings under ``data``: a local folder, or a URI pyarrow's filesystems open."""
    uri = _public_uri(data)
    if not _is_uri(data):
        root = Path(data).absolute()
        recordings = dataset.scan_folder(root)
        files = [SourceFile(dataset.printable(r.path.relative_to(root).as_posix()),
                            sys.intern(r.speaker), str(r.path),
                            r.problem) for r in recordings]  # fmt: skip
        del recordings  # their Path objects weigh several times as much
        return DataSource(pafs.LocalFileSystem(), uri, files, root)
    try:
        fs, root = pafs.FileSystem.from_uri(data)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise DatasetError(f"cannot open data URI {uri!r}: {exc}") from exc
    if isinstance(fs, pafs.LocalFileSystem):
        return open_source(root)
    if not root.strip("/"):  # its buckets would be taken for speaker folders
        raise DatasetError(
            f"data URI {uri!r} names no bucket or folder: give the folder that holds the "
            "speaker folders (s3://BUCKET/PATH)"
        )
    try:
        files = _remote_files(fs, root, uri)
    except OSError as exc:
        raise DatasetError(f"cannot list data URI {uri!r}: {exc}") from exc
    return DataSource(fs, uri, files, None)


# ---------------------------------------------------------------------------- the local engine


class _Caches:
    """Rows by file content in training's own cache files: one for the clean rows and one per
    degraded copy, so that a table run warms training and the reverse."""

    def __init__(self, root: Path, settings: RowSettings) -> None:
        self.clean = FeatureCache(root, settings.cfg, settings.max_seconds)
        self.copies = [
            FeatureCache(root, settings.cfg, settings.max_seconds, settings.degradation(copy))
            for copy in range(settings.degraded_copies)
        ]

    def lookup(self, data: bytes) -> FileRow | None:
        """The file's row, or None unless the clean row and every copy are cached."""
        sha = hashlib.sha256(data).hexdigest()
        features, error = self.clean.rows.get(sha), self.clean.errors.get(sha)
        if features is None and error is None:
            return None
        if features is None:
            return FileRow(sha, *probe(data), None, error, True, (), ())
        found = [(cache.rows.get(sha), cache.errors.get(sha)) for cache in self.copies]
        if any(row is None and reason is None for row, reason in found):
            return None
        copies = tuple(row for row, _ in found)
        reasons = tuple(reason for _, reason in found)
        return FileRow(sha, *probe(data), features, None, True, copies, reasons)

    def store(self, row: FileRow) -> None:
        if row.sha256 is None or not row.lasting:
            return
        self.clean.put(row.sha256, row.features, row.error)
        for cache, copy, reason in zip(self.copies, row.degraded, row.degraded_errors,
                                       strict=False):  # fmt: skip
            cache.put(row.sha256, copy, reason)

    def save(self) -> None:
        for cache in (self.clean, *self.copies):
            cache.save_or_warn()


Task = tuple[pafs.FileSystem | None, str, RowSettings]


def _read_and_extract(task: Task) -> FileRow:
    fs, location, settings = task
    try:
        data = read_file(fs, location)
    except OSError as exc:
        error, lasting = skip_reason(exc)
        return FileRow(None, None, None, None, error, lasting, (), ())
    return extract_row(data, settings)


def _cached_rows(
    fs: pafs.FileSystem | None, chunk: Sequence[SourceFile], caches: _Caches
) -> dict[int, FileRow]:
    found = {}
    for i, f in enumerate(chunk):
        try:
            row = caches.lookup(read_file(fs, f.location))
        except OSError:
            continue  # decoded below, and skipped with the reason
        if row is not None:
            found[i] = row
    return found


def _chunks(files: Sequence[SourceFile], size: int) -> Iterator[Sequence[SourceFile]]:
    for start in range(0, len(files), size):
        yield files[start : start + size]


Batches = Iterator[tuple[list[str], list[pa.Array]]]  # file locations, their computed columns


def _local_batches(source: DataSource, settings: RowSettings, opts: TableOptions) -> Batches:
    """Rows from a process pool on this machine, in the order of ``source.files``."""
    jobs = opts.jobs or os.cpu_count() or 1
    caches = _Caches(opts.cache_dir, settings) if opts.cache_dir is not None else None
    parallel = jobs > 1 and len(source.files) >= PARALLEL_MIN_FILES
    pool = process_pool(jobs, preload=["pipeline.table"]) if parallel else None
    sequential = threadpool_limits(limits=1, user_api="blas") if pool is None else nullcontext()
    chunksize = max(1, min(64, BATCH_ROWS // (jobs * 8)))
    with pool or nullcontext(), sequential:
        for chunk in _chunks(source.files, BATCH_ROWS):
            fs = source.remote_fs
            rows = _cached_rows(fs, chunk, caches) if caches is not None else {}
            todo = [i for i in range(len(chunk)) if i not in rows]
            tasks = [(fs, chunk[i].location, settings) for i in todo]
            computed = (
                pool.map(_read_and_extract, tasks, chunksize=chunksize)
                if pool is not None
                else map(_read_and_extract, tasks)
            )
            for i, row in zip(todo, computed, strict=True):
                rows[i] = row
                if caches is not None:
                    caches.store(row)
            ordered = [rows[i] for i in range(len(chunk))]
            yield [f.location for f in chunk], computed_columns(ordered, settings.cfg.row_width)
    if caches is not None:
        caches.save()


def _ray_batches(source: DataSource, settings: RowSettings, opts: TableOptions) -> Batches:
    try:
        from pipeline import ray_engine
    except ImportError as exc:
        if not (exc.name or "").startswith("ray"):
            raise
        raise ParameterError(
            "engine='ray' needs Ray, which is not installed: pip install 'voiceid[ray]'"
        ) from exc
    return ray_engine.ray_batches(source, settings, opts)


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class TableSummary:
    """What ``write_feature_table`` wrote."""

    out: Path
    cfg: FeatureConfig
    files: int
    skipped: list[tuple[str, str]]  # (path, error)
    degraded: int  # rows with a degraded copy


def _unread(files: Sequence[SourceFile]) -> Iterator[tuple[int, SourceFile]]:
    """Each file with a problem, which no engine reads, and how many files to read come before
    it."""
    read = 0
    for f in files:
        if f.problem is None:
            read += 1
        else:
            yield read, f


def _problem_columns(f: SourceFile, n_bands: int) -> list[pa.Array]:
    """The computed columns of the row of ``f``, a file with a problem: skipped with it."""
    return computed_columns([FileRow(None, None, None, None, f.problem, False, (), ())], n_bands)


Rows = Iterator[tuple[list[SourceFile], list[pa.Array]]]  # files, their computed columns


def _rows_in_order(files: Sequence[SourceFile], batches: Batches, n_bands: int) -> Rows:
    """A row for each of ``files``, in their order: the engine's ``batches`` for the files it
    was given, each checked to be the next one's (:func:`_next_files`), and for each with a
    problem, which it was not, a row skipping it with that, in its place."""
    to_read = iter([f for f in files if f.problem is None])
    unread = deque(_unread(files))
    done = 0
    for locations, columns in batches:
        chunk = _next_files(locations, to_read)
        at = 0
        while unread and unread[0][0] <= done + len(chunk):
            cut = unread[0][0] - done
            if cut > at:
                yield chunk[at:cut], [c.slice(at, cut - at) for c in columns]
                at = cut
            f = unread.popleft()[1]
            yield [f], _problem_columns(f, n_bands)
        if at < len(chunk):
            yield chunk[at:], [c.slice(at) for c in columns]
        done += len(chunk)
    if next(to_read, None) is not None:
        raise RuntimeError("feature engine returned fewer rows than there are files")
    for _, f in unread:
        yield [f], _problem_columns(f, n_bands)


def _later_copies_skipped(
    chunk: Sequence[SourceFile], columns: list[pa.Array], first_of: dict[bytes, SourceFile]
) -> list[pa.Array]:
    """``columns``, the computed columns of ``chunk``'s rows, with each file that has the bytes
    of an earlier usable one skipped, naming it, as training skips it
    (``dataset.same_bytes_reason``): no features or copies, what the file is still said.
    ``first_of`` (the sha256 of each usable file so far -> the first with it) takes this
    chunk's; a copy of a refused file is refused for its own reason, as it is."""
    shas, errors = columns[0].to_pylist(), columns[4].to_pylist()
    usable = columns[3].is_valid().to_numpy(zero_copy_only=False)
    keep = np.ones(len(chunk), dtype=bool)
    for i, (f, sha) in enumerate(zip(chunk, shas, strict=True)):
        if sha is None or not usable[i]:
            continue
        first = first_of.setdefault(bytes.fromhex(sha), f)
        if first is not f:
            keep[i] = False
            errors[i] = dataset.same_bytes_reason(Path(first.rel), Path(f.rel))
    if keep.all():
        return columns
    mask = pa.array(keep)
    features, copies = (pc.if_else(mask, c, pa.nulls(len(keep), c.type)) for c in columns[3::2])
    return [*columns[:3], features, pa.array(errors, pa.string()), copies]


def _next_files(locations: Iterable[str], expected: Iterator[SourceFile]) -> list[SourceFile]:
    """The files these rows are for. Each row must be the next file's: an engine that lost,
    added or reordered one is a bug, and no table is written."""
    files = []
    for location in locations:
        want = next(expected, None)
        if want is None or want.location != location:
            shown = "no more files" if want is None else repr(want.location)
            raise RuntimeError(f"engine returned a row for {location!r}; expected {shown}")
        files.append(want)
    return files


class _RowGroups:
    """Rows into row groups of ``BATCH_ROWS``, whatever batches an engine delivers them in, so
    that both engines write the same file, and no file is a heap of tiny row groups."""

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self.writer = writer
        self.pending: list[pa.RecordBatch] = []
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.rows += batch.num_rows
        while self.rows >= BATCH_ROWS:
            self._write(BATCH_ROWS)

    def close(self) -> None:
        if self.rows:
            self._write(self.rows)

    def _write(self, n: int) -> None:
        rows = pa.Table.from_batches(self.pending)
        # one chunk per column: parquet cuts its pages where the chunks end, so rows in the
        # engines' different batches would otherwise be paged, and written, differently
        self.writer.write_table(rows.slice(0, n).combine_chunks(), row_group_size=n)
        rest = rows.slice(n)
        self.pending, self.rows = rest.to_batches(), rest.num_rows


def _metadata(source: DataSource, settings: RowSettings, opts: TableOptions) -> dict[str, Any]:
    return {
        "format_version": TABLE_FORMAT_VERSION,
        "feature_config": settings.cfg.to_dict(),
        "feature_version": FEATURE_VERSION,
        "max_seconds": settings.max_seconds,
        "fmax_derived": opts.fmax is None,
        "degrade_seed": settings.degrade_seed,
        "degraded_copies": settings.degraded_copies,
        "data": source.uri,
        "files": len(source.files),
    }


def write_feature_table(data: str, out: Path, opts: TableOptions = TableOptions()) -> TableSummary:
    """Extract one row per recording under ``data`` and write the table to ``out`` atomically.
    An ``out`` it could not write, or should not replace, is refused before any work."""
    _check_out(out)
    source = open_source(data)
    lowest = None if opts.fmax is not None else source.lowest_sample_rate()
    cfg = derived_feature_config(lowest, opts.fmax)
    settings = RowSettings(cfg, opts.max_seconds, opts.degrade_seed, opts.degraded_copies)
    schema = table_schema(cfg.row_width, _metadata(source, settings, opts))
    engine = _ray_batches if opts.engine == "ray" else _local_batches
    readable = replace(source, files=[f for f in source.files if f.problem is None])
    batches = engine(readable, settings, opts) if readable.files else iter(())
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent.glob(f".{out.name}.tmp*"))  # what killed writes left
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    skipped: list[tuple[str, str]] = []
    degraded = 0
    first_of: dict[bytes, SourceFile] = {}
    bar = tqdm(total=len(source.files), unit="clip", desc="features", disable=not opts.progress,
               file=sys.stderr)  # fmt: skip
    try:
        with _disk_refusals_said(out), pq.ParquetWriter(tmp, schema) as writer, bar:
            groups = _RowGroups(writer)
            for chunk, computed in _rows_in_order(source.files, batches, cfg.row_width):
                columns = _later_copies_skipped(chunk, computed, first_of)
                paths = pa.array([f.rel for f in chunk], pa.string())
                speakers = pa.array([f.speaker for f in chunk], pa.string())
                batch = pa.RecordBatch.from_arrays([paths, speakers, *columns], schema=schema)
                groups.add(batch)
                errors = columns[4].to_pylist()
                skipped += [(f.rel, e) for f, e in zip(chunk, errors, strict=True) if e is not None]
                copies = pc.list_flatten(columns[5])
                degraded += len(copies) - copies.null_count
                bar.update(len(chunk))
            groups.close()
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return TableSummary(out, cfg, len(source.files), skipped, degraded)


@contextlib.contextmanager
def _disk_refusals_said(out: Path) -> Iterator[None]:
    """Turn the disk's refusal to take more of the table (full, a quota, read-only) into a
    :class:`DatasetError` naming ``out``: the table is written while the clips are read, so
    this comes at any point of a run."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _DISK_REFUSALS:
            raise
        raise DatasetError(
            f"cannot write a table at {str(out)!r}: {os.strerror(exc.errno)}"
        ) from exc


def _check_out(out: Path) -> None:
    """Raise :class:`DatasetError` where a feature table cannot be written at ``out``, or would
    replace what is not a feature table; makes ``out``'s folder, and a file there to be sure
    that one can be made."""
    try:
        _check_replaceable(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out.parent).close()
    except OSError as exc:
        raise DatasetError(f"cannot write a table at {str(out)!r}: {exc.strerror or exc}") from exc


def _check_replaceable(out: Path) -> None:
    if (blocking := file_in_the_way(out)) is not None:
        raise DatasetError(
            f"cannot write a table at {str(out)!r}: {str(blocking)!r} is a file, not a folder"
        )
    if out.is_dir():
        raise DatasetError(f"{str(out)!r} is a folder: name the .parquet file to write")
    if out.exists() and not _is_feature_table(out):
        raise DatasetError(
            f"{str(out)!r} exists and is not a voiceid feature table; refusing to replace it"
        )


def _is_feature_table(path: Path) -> bool:
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return False
    return METADATA_KEY in metadata


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class TableInfo:
    """A table's metadata."""

    cfg: FeatureConfig
    feature_version: int
    max_seconds: float
    fmax_derived: bool
    degrade_seed: int
    degraded_copies: int
    data: str
    files: int


def read_feature_table(path: Path) -> tuple[pa.Table, TableInfo]:
    """The table at ``path`` and its metadata; :class:`DatasetError` when it is not a feature
    table of this feature version whose columns and values training can use."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(f"{str(path)!r} is not a readable Parquet feature table: {exc}") from exc
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise DatasetError(f"{str(path)!r} is a Parquet file but not a voiceid feature table")
    info = _table_info(path, _metadata_of(path, raw))
    _check_columns(path, table, info)
    _check_values(path, table, info)
    return table, info


def _metadata_of(path: Path, raw: bytes) -> dict[str, Any]:
    """The table's metadata, checked for the keys and types of :func:`_metadata`."""
    try:
        meta = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise DatasetError(
            f"{str(path)!r} has feature-table metadata that is not JSON: {exc}"
        ) from None
    if not isinstance(meta, dict):
        raise DatasetError(
            f"{str(path)!r} has feature-table metadata that is a JSON {type(meta).__name__}, "
            "not an object: extract the table again"
        )
    if meta.get("format_version") != TABLE_FORMAT_VERSION:
        raise DatasetError(
            f"{str(path)!r} is a feature table of format version {meta.get('format_version')!r}; "
            f"this voiceid reads version {TABLE_FORMAT_VERSION}"
        )
    for key, (kind, words) in _METADATA_TYPES.items():
        if key not in meta:
            raise DatasetError(
                f"{str(path)!r} has feature-table metadata without {key!r}: extract the table again"
            )
        value = meta[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise DatasetError(
                f"{str(path)!r} has feature-table metadata {key}={value!r}, which is not "
                f"{words}: extract the table again"
            )
    return meta


# The metadata keys a table is read by, with their JSON types (a bool is no number here).
_METADATA_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "feature_version": (int, "a whole number"),
    "feature_config": (dict, "an object"),
    "max_seconds": ((int, float), "a number"),
    "fmax_derived": (bool, "true or false"),
    "degrade_seed": (int, "a whole number"),
    "degraded_copies": (int, "a whole number"),
    "data": (str, "a string"),
    "files": (int, "a whole number"),
}


def _table_info(path: Path, meta: dict[str, Any]) -> TableInfo:
    """The metadata's values, each in range; the feature config of this feature version."""
    if meta["feature_version"] != FEATURE_VERSION:
        raise DatasetError(
            f"{str(path)!r} holds features of version {meta['feature_version']}; this voiceid "
            f"computes version {FEATURE_VERSION}: extract the table again"
        )
    try:
        cfg = FeatureConfig.from_dict(meta["feature_config"])
        check_max_seconds(meta["max_seconds"])
        check_seed("degrade_seed", meta["degrade_seed"])
        check_copies("degraded_copies", meta["degraded_copies"])
    except (TypeError, ValueError) as exc:  # ParameterError, and FeatureConfig's own checks
        raise DatasetError(
            f"{str(path)!r} has feature-table metadata training cannot use: {exc}"
        ) from None
    return TableInfo(cfg, meta["feature_version"], meta["max_seconds"], meta["fmax_derived"],
                     meta["degrade_seed"], meta["degraded_copies"], meta["data"],
                     meta["files"])  # fmt: skip


def _check_columns(path: Path, table: pa.Table, info: TableInfo) -> None:
    """Every column of :func:`table_schema`, of its type for the table's feature config."""
    for expected in table_schema(info.cfg.row_width):
        if table.schema.get_field_index(expected.name) < 0:
            raise DatasetError(
                f"{str(path)!r} has no column {expected.name!r}, which a feature table holds: "
                "extract the table again"
            )
        actual = table.schema.field(expected.name).type
        if actual != expected.type:
            raise DatasetError(
                f"{str(path)!r} has a column {expected.name!r} of type {actual}; a feature table "
                f"of its feature config holds {expected.type} there: extract the table again"
            )
        if not expected.nullable and (nulls := table.column(expected.name).null_count):
            raise DatasetError(
                f"{str(path)!r} has {nulls} rows without a {expected.name!r}: extract the "
                "table again"
            )


def _check_values(path: Path, table: pa.Table, info: TableInfo) -> None:
    """Feature values that are finite and of a size features have; as many degraded copies of
    each usable clip as the metadata says."""
    features = table.column("features")
    _check_finite(path, "features", features, info.cfg.row_width)
    copies = table.column("degraded").filter(features.is_valid())
    counts = pc.fill_null(pc.list_value_length(copies), -1).to_numpy(zero_copy_only=False)
    if (wrong := int((counts != info.degraded_copies).sum())) > 0:
        raise DatasetError(
            f"{str(path)!r} holds {wrong} rows with other than the {info.degraded_copies} "
            "degraded copies its metadata gives: extract the table again"
        )
    _check_finite(path, "degraded copies", pc.list_flatten(copies), info.cfg.row_width)


def _check_finite(path: Path, name: str, column: pa.Array | pa.ChunkedArray, width: int) -> None:
    if (bad := _unusable_rows(column, width)) > 0:
        raise DatasetError(
            f"{str(path)!r} holds {bad} rows whose {name} are not finite numbers of at most "
            f"{MAX_FEATURE_MAGNITUDE:g} in size: extract the table again"
        )


def _unusable_rows(column: pa.Array | pa.ChunkedArray, width: int) -> int:
    """Rows of the fixed-size list ``column`` holding a value no feature row can hold."""
    rows = _histogram_rows(column.filter(column.is_valid()), width)
    usable = np.isfinite(rows) & (np.abs(rows) <= MAX_FEATURE_MAGNITUDE)
    return int((~usable.all(axis=1)).sum())


@dataclass(frozen=True)
class TrainingFeatures:
    """The rows ``train`` learns from, from a folder or a table.

    From a table, ``degraded`` holds, per copy number, the degraded copies of the usable clips
    that have one, as many as training augments with; and ``first_copies`` copy 0 of every usable
    clip (empty when the table holds none drawn with training's seed), which training reports
    validation on. From a folder both are None: they are still to be extracted, for the clips of
    the training and the validation split.
    """

    root: Path  # recording paths are relative to this in reports
    recordings: list[Recording]  # every file found
    cfg: FeatureConfig
    extraction: Extraction
    degraded: list[Extraction] | None
    first_copies: Extraction | None
    fmax_derived: bool
    digests: dict[Recording, str] = field(default_factory=dict)  # a table's sha256 of each file

    def first_copies_of(self, recordings: list[Recording]) -> Extraction | None:
        """Copy 0 of each of ``recordings`` that has one; None from a folder."""
        if self.first_copies is None:
            return None
        index = {r: i for i, r in enumerate(self.first_copies.recordings)}
        kept = [r for r in recordings if r in index]
        rows = self.first_copies.features[[index[r] for r in kept]]
        return Extraction(kept, rows.reshape(len(kept), self.cfg.row_width))


def _histogram_rows(column: pa.Array | pa.ChunkedArray, n_bands: int) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.astype(np.float32, copy=False).reshape(-1, n_bands)


def _extraction(recordings: list[Recording], column: pa.Array | pa.ChunkedArray, n_bands: int,
                errors: Sequence[str | None]) -> Extraction:  # fmt: skip
    has_row = column.is_valid().to_numpy(zero_copy_only=False)
    kept = [r for r, ok in zip(recordings, has_row, strict=True) if ok]
    skipped = [(r, e or "unusable") for r, e, ok in zip(recordings, errors, has_row, strict=True)
               if not ok]  # fmt: skip
    return Extraction(kept, _histogram_rows(column.filter(has_row), n_bands), skipped, decoded=0)


def _counted_once(
    recordings: list[Recording], features: pa.ChunkedArray, errors: list[str | None],
    shas: list[str | None],
) -> tuple[pa.ChunkedArray, list[str | None]]:  # fmt: skip
    """``features`` without the rows of the later files with a usable file's bytes, and
    ``errors`` with why each is skipped, as extraction from a folder skips them."""
    copy_of = dataset.earlier_copies(shas)
    usable = features.is_valid().to_numpy(zero_copy_only=False)
    dropped = [i for i, first in copy_of.items() if usable[first]]
    if not dropped:
        return features, errors
    keep = np.ones(len(recordings), dtype=bool)
    keep[dropped] = False
    errors = list(errors)
    for i in dropped:
        errors[i] = dataset.same_bytes_reason(recordings[copy_of[i]].path, recordings[i].path)
    return pc.if_else(pa.array(keep), features, pa.nulls(len(keep), features.type)), errors


def _check_copies(info: TableInfo, seed: int, copies: int) -> None:
    if info.degraded_copies == 0:
        raise ParameterError(
            "the feature table has no degraded copies (made with --degraded-copies 0): train "
            f"with --no-augment, or extract again with --degraded-copies {copies}"
        )
    if seed != info.degrade_seed:
        raise ParameterError(
            f"seed={seed} needs degraded copies drawn with seed {seed}, and the feature table's "
            f"were drawn with seed {info.degrade_seed}: train with --no-augment or --seed "
            f"{info.degrade_seed}, or extract again with --degrade-seed {seed}"
        )
    if copies > info.degraded_copies:
        raise ParameterError(
            f"training augments with {copies} degraded copies of each clip, and the feature "
            f"table has {info.degraded_copies}: extract again with --degraded-copies {copies}"
        )


def training_features(
    path: Path, *, fmax: float | None, max_seconds: float, degrade_seed: int, degraded_copies: int
) -> TrainingFeatures:
    """A table's rows as ``train`` uses them, with its first ``degraded_copies`` copies.

    ``fmax`` and ``max_seconds``, when they differ from the table's, and copies the table does
    not hold (another seed, more of them), are errors: the features were fixed when the table
    was made.
    """
    table, info = read_feature_table(path)
    if fmax is not None and fmax != info.cfg.fmax:
        raise ParameterError(
            f"fmax={fmax!r} differs from the feature table's fmax={info.cfg.fmax!r}: "
            "extract the table again with voiceid features --fmax"
        )
    if max_seconds != info.max_seconds:
        raise ParameterError(
            f"max_seconds={max_seconds!r} differs from the feature table's "
            f"max_seconds={info.max_seconds!r}: extract the table again with --max-seconds"
        )
    if degraded_copies:
        _check_copies(info, degrade_seed, degraded_copies)
    try:
        return _training_rows(table, info, degrade_seed, degraded_copies)
    except (TypeError, ValueError, KeyError, IndexError, pa.ArrowException) as exc:
        if isinstance(exc, VoiceIdError):
            raise
        # read_feature_table checked what training relies on; what it did not foresee is still
        # the table's fault, and named as such
        raise DatasetError(f"{str(path)!r} is not a usable feature table: {exc}") from exc


def _training_rows(
    table: pa.Table, info: TableInfo, degrade_seed: int, degraded_copies: int
) -> TrainingFeatures:
    """The checked table's rows as :func:`training_features` returns them."""
    recordings = [Recording(Path(p), s) for p, s in zip(table.column("path").to_pylist(),
                  table.column("speaker").to_pylist(), strict=True)]  # fmt: skip
    n_bands = info.cfg.row_width
    shas = table.column("sha256").to_pylist()
    features, errors = _counted_once(recordings, table.column("features"),
                                     table.column("error").to_pylist(), shas)  # fmt: skip
    clean = _extraction(recordings, features, n_bands, errors)
    copies = table.column("degraded").filter(features.is_valid())

    def copy_rows(copy: int) -> Extraction:
        no_reasons = [None] * len(clean.recordings)  # training needs only the rows
        return _extraction(clean.recordings, pc.list_element(copies, copy), n_bands, no_reasons)

    degraded = [copy_rows(copy) for copy in range(degraded_copies)]
    drawn_alike = info.degraded_copies > 0 and info.degrade_seed == degrade_seed
    first = copy_rows(0) if drawn_alike else Extraction([], np.zeros((0, n_bands), np.float32))
    digests = {r: sha for r, sha in zip(recordings, shas, strict=True) if sha}
    return TrainingFeatures(Path(), recordings, info.cfg, clean, degraded, first,
                            info.fmax_derived, digests)  # fmt: skip
