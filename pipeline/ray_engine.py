"""The Ray engine of ``voiceid features``: Ray Data reads the files and computes the rows.

The only module that imports Ray (the ``voiceid[ray]`` extra). ``ray.data.read_binary_files``
reads each file on a worker, and ``map_batches`` runs ``table.extract_row`` on its bytes in the
same task (Ray fuses the two), so audio never leaves the worker that read it: only the rows,
about 500 bytes a file, travel to the driver, which streams them into the Parquet writer.

Workers import their own ``pipeline`` package: every node must have the same voiceid installed.
Each batch checks that the worker's feature version is the driver's, so a node with other
feature code fails the run instead of writing rows that mean something else.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from functools import partial
from typing import cast

import pyarrow as pa
import ray
import ray.data
from threadpoolctl import threadpool_limits

from pipeline import features
from pipeline.errors import ParameterError
from pipeline.table import (
    Batches,
    DataSource,
    RowSettings,
    TableOptions,
    computed_columns,
    extract_row,
)

__all__ = ["ray_batches"]

LOCATION = "path"  # the column read_binary_files names each row's file in
# Files per read task. Ray's own choice for short clips is ~100, and then per-task costs rival
# the decoding (bench/ray_engine.py); a thousand short clips are a few seconds of work.
FILES_PER_TASK = 1000
BATCH_FILES = 64  # files whose bytes a task holds at once: bounded even for 60 s clips
CONNECT_TIMEOUT_S = 10.0  # for a cluster's head to accept a connection before Ray is asked


def _rows(batch: pa.Table, settings: RowSettings, feature_version: int) -> pa.Table:
    """A batch of files (``path``, ``bytes``) in, their locations and computed columns out."""
    if feature_version != features.FEATURE_VERSION:
        raise RuntimeError(
            f"this Ray worker computes feature version {features.FEATURE_VERSION}, the driver "
            f"{feature_version}: install the same voiceid on every node"
        )
    # Ray holds each task to one core; BLAS threads would spin on the histogram's small product.
    with threadpool_limits(limits=1, user_api="blas"):
        rows = [extract_row(data, settings) for data in batch.column("bytes").to_pylist()]
    columns = computed_columns(rows, settings.cfg.row_width)
    names = [LOCATION, *(f"c{i}" for i in range(len(columns)))]
    return pa.Table.from_arrays([batch.column(LOCATION), *columns], names=names)


def _connect(opts: TableOptions) -> bool:
    """Join ``opts.ray_address``, or start a Ray on this machine; True when this call did."""
    if ray.is_initialized():
        return False
    # No usage reports leave the machine unless the cluster's owner turns them on.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if opts.ray_address is None:
        ray.init(num_cpus=opts.jobs or os.cpu_count(), include_dashboard=False,
                 logging_level=logging.WARNING)  # fmt: skip
    else:
        _join(opts.ray_address)
    return True


def _join(address: str) -> None:
    """Join the Ray cluster at ``address``; :class:`ParameterError` naming it where Ray cannot
    (an unknown scheme, no cluster there). Ray retries an address where nothing listens for
    minutes, and offers no connect timeout to set, so a ``HOST:PORT`` (or ``ray://HOST:PORT``)
    is first tried with a plain connection."""
    reason = _unreachable(address)
    try:
        if reason is None:
            ray.init(address=address, logging_level=logging.WARNING)
    except (RuntimeError, ValueError, ConnectionError) as exc:
        reason = next(iter(str(exc).splitlines()), type(exc).__name__)  # a message of one line
    if reason is not None:
        raise ParameterError(
            f"ray_address={address!r}: cannot join a Ray cluster there: {reason}"
        ) from None


def _unreachable(address: str) -> str | None:
    """Why nothing answers at ``address`` when it is ``[ray://]HOST:PORT``, else None (Ray
    itself reads ``auto`` and other forms)."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or "/" in host or not port.isdecimal():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except (OSError, OverflowError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return (
            f"nothing answers at {host}:{port} ({why}); `ray start --head` on the cluster's "
            "first machine prints the address to give"
        )
    return None


def _read_tasks(files: int) -> int:
    """At least two tasks per CPU of the cluster, so that none idles at the end."""
    cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
    return max(1, min(files, max(math.ceil(files / FILES_PER_TASK), 2 * cpus)))


def ray_batches(source: DataSource, settings: RowSettings, opts: TableOptions) -> Batches:
    """Rows computed by Ray Data tasks, streamed back in the order of ``source.files``."""
    started = _connect(opts)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        # The table writer shows progress in rows; Ray Data would add its own bars and log
        # each execution's plan.
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        dataset = ray.data.read_binary_files(
            [f.location for f in source.files],
            filesystem=source.fs,
            include_paths=True,
            override_num_blocks=_read_tasks(len(source.files)),
        ).map_batches(
            partial(_rows, settings=settings, feature_version=features.FEATURE_VERSION),
            batch_format="pyarrow",
            batch_size=BATCH_FILES,
            compute=ray.data.TaskPoolStrategy(size=opts.jobs),
        )
        for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            table = cast(pa.Table, batch)
            columns = [c.combine_chunks() for c in table.columns[1:]]
            yield table.column(LOCATION).to_pylist(), columns
    finally:
        if started:
            ray.shutdown()
