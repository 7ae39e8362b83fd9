"""The Ray engine against the local engine: the same table, bit for bit, from a folder (the
shared FSDD, and a small folder with every kind of skipped file) and from S3.

Ray runs on this machine (``ray.init(num_cpus=2)``), once for the module; S3 is moto's server on
127.0.0.1, started by the test. FSDD lives at ``$VOICEID_DATA/fsdd`` (default ``../shared/data``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.common import DATA_ROOT
from pipeline.dataset import LOOPS
from pipeline.errors import ParameterError
from pipeline.table import TableOptions, write_feature_table
from tests.pipeline.table_helpers import SKIPPED, build_corpus
from voiceid.cli import main

ray = pytest.importorskip("ray", reason="the Ray engine needs the voiceid[ray] extra")

FSDD = DATA_ROOT / "fsdd"
BUCKET = "corpus"
# Loopback only: no credential lookups against cloud metadata endpoints, in any process.
NO_METADATA_ENDPOINT = {"AWS_EC2_METADATA_DISABLED": "true"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A two-CPU Ray on this machine, in a temp dir of its own, for the whole module."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    temp_dir = tempfile.mkdtemp(prefix="voiceid-ray-")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             object_store_memory=256 * 2**20, _temp_dir=temp_dir,
             runtime_env={"env_vars": NO_METADATA_ENDPOINT})  # fmt: skip
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> Path:
    return build_corpus(tmp_path_factory.mktemp("corpus"), demo_data)


def test_an_address_ray_cannot_join_is_a_parameter_error(corpus: Path, tmp_path: Path) -> None:
    if ray.is_initialized():  # a Ray already joined is used as it is, whatever the address
        pytest.skip("needs no Ray running in this process: run it before the tests that start one")
    opts = TableOptions(engine="ray", ray_address="nonsense://x")
    with pytest.raises(ParameterError) as caught:
        write_feature_table(str(corpus), tmp_path / "t.parquet", opts)
    assert str(caught.value) == (
        "ray_address='nonsense://x': cannot join a Ray cluster there: Module: nonsense does not "
        "exist."
    )


def test_an_address_where_nothing_listens_is_refused_at_once(corpus: Path, tmp_path: Path) -> None:
    """Ray itself retries such an address for minutes."""
    if ray.is_initialized():
        pytest.skip("needs no Ray running in this process: run it before the tests that start one")
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    opts = TableOptions(engine="ray", ray_address=f"127.0.0.1:{port}")
    with pytest.raises(ParameterError) as caught:
        write_feature_table(str(corpus), tmp_path / "t.parquet", opts)
    assert str(caught.value) == (
        f"ray_address='127.0.0.1:{port}': cannot join a Ray cluster there: nothing answers at "
        f"127.0.0.1:{port} (Connection refused); `ray start --head` on the cluster's first "
        "machine prints the address to give"
    )
    assert not ray.is_initialized()


def _both_engines(data: str, out_dir: Path) -> tuple[pa.Table, pa.Table]:
    write_feature_table(data, out_dir / "local.parquet", TableOptions(jobs=2))
    write_feature_table(data, out_dir / "ray.parquet", TableOptions(engine="ray"))
    return pq.read_table(out_dir / "local.parquet"), pq.read_table(out_dir / "ray.parquet")


@pytest.mark.integration
@pytest.mark.skipif(
    not FSDD.is_dir(),
    reason=f"FSDD not found at {FSDD} (set VOICEID_DATA to the folder holding fsdd/)",
)
def test_ray_rows_are_the_local_rows_on_fsdd(local_ray: None, tmp_path: Path) -> None:
    local, on_ray = _both_engines(str(FSDD), tmp_path)

    assert local.num_rows == 2700  # every clip usable: skip reasons are the next test's
    assert on_ray.equals(local, check_metadata=True)
    assert (tmp_path / "ray.parquet").read_bytes() == (tmp_path / "local.parquet").read_bytes()


@pytest.mark.requires_ffmpeg  # the not-audio file's message names ffmpeg
def test_ray_gives_every_skip_reason_as_the_local_engine(
    local_ray: None, corpus: Path, tmp_path: Path
) -> None:
    local, on_ray = _both_engines(str(corpus), tmp_path)

    assert on_ray.equals(local, check_metadata=True)
    rows = on_ray.to_pydict()
    errors = {p: e for p, e in zip(rows["path"], rows["error"], strict=True) if e is not None}
    assert errors == SKIPPED


@pytest.mark.requires_ffmpeg  # the not-audio file's message names ffmpeg
def test_ray_is_not_given_a_link_that_loops_and_skips_a_copy_as_the_local_engine(
    local_ray: None, corpus: Path, tmp_path: Path
) -> None:
    """Ray would read the folder such a link leads to as the files in it; a copy is skipped by
    the driver, whichever engine computed its row."""
    data = Path(shutil.copytree(corpus, tmp_path / "data", symlinks=True))
    (data / "Steve" / "again").symlink_to(".")
    shutil.copy(data / "Steve" / "hello_000.wav", data / "David" / "stolen.wav")

    local, on_ray = _both_engines(str(data), tmp_path)

    assert on_ray.equals(local, check_metadata=True)
    rows = on_ray.to_pydict()
    errors = {p: e for p, e in zip(rows["path"], rows["error"], strict=True) if e is not None}
    assert errors == SKIPPED | {
        "Steve/again": LOOPS,
        "Steve/hello_000.wav": "the same bytes as 'David/stolen.wav', counted once",
    }


@pytest.fixture(scope="module")
def s3_uri(corpus: Path) -> Iterator[str]:
    """``corpus`` uploaded to a bucket of moto's S3 server on 127.0.0.1; the URI of its copy."""
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    for path in sorted(corpus.rglob("*")):
        if path.is_file():
            key = f"data/{path.relative_to(corpus).as_posix()}"
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    yield (f"s3://test:test@{BUCKET}/data?endpoint_override={host}:{port}&scheme=http"
           "&region=us-east-1")  # fmt: skip
    server.stop()


def _without_data(table: pa.Table) -> tuple[pa.Table, dict[str, Any]]:
    meta = json.loads(table.schema.metadata[b"voiceid"])
    return table.replace_schema_metadata(None), {k: v for k, v in meta.items() if k != "data"}


def test_features_from_s3_are_the_folders(
    local_ray: None,
    corpus: Path,
    s3_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in NO_METADATA_ENDPOINT.items():
        monkeypatch.setenv(name, value)
    write_feature_table(str(corpus), tmp_path / "folder.parquet", TableOptions(jobs=1))
    folder = _without_data(pq.read_table(tmp_path / "folder.parquet"))

    for engine in ("local", "ray"):
        out = tmp_path / f"s3-{engine}.parquet"
        code = main(["features", s3_uri, "--out", str(out), "--engine", engine, "--no-cache"])
        assert code == 0, capsys.readouterr().err
        assert capsys.readouterr().out.startswith(f"wrote {out}: 29 files, 4 skipped")
        table = pq.read_table(out)
        rows, meta = _without_data(table)
        assert rows.equals(folder[0]) and meta == folder[1], engine
        recorded = json.loads(table.schema.metadata[b"voiceid"])["data"]
        assert recorded.startswith(f"s3://{BUCKET}/data?endpoint_override=")  # no credentials
