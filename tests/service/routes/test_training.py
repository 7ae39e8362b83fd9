"""POST /train, GET /train/{id}, GET /models, POST /models/{version}/activate: training a new
version in a subprocess and serving it live, rolling back, and what a failed job leaves."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from pipeline import paths
from pipeline.bundle import load_bundle
from pipeline.demo.synth import STRANGER, VoiceSpec, write_demo_data
from tests.helpers import MODEL_DIR, read_only
from tests.security import hostile
from tests.service.test_main import running, voiceid_command

ALICE = VoiceSpec("Alice", pitch_hz=210.0, formant_scale=1.2, tilt=10.0, breathiness=0.1)
JOB_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def alice_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 clips of Alice to teach, in the store's layout."""
    root = tmp_path_factory.mktemp("alice")
    write_demo_data(root, clips_per_voice=12, seed=5, voices=[ALICE])
    return root / "Alice"


@pytest.fixture(scope="module")
def fresh_alice(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    root = tmp_path_factory.mktemp("fresh")
    written = write_demo_data(root, clips_per_voice=8, seed=9, voices=[ALICE])
    return [p.read_bytes() for p in written["Alice"]]


def _store_with(data_dir: Path, clips: Path, count: int = 12) -> Path:
    (data_dir / clips.name).mkdir(parents=True, exist_ok=True)
    for path in sorted(clips.iterdir())[:count]:
        shutil.copy(path, data_dir / clips.name / path.name)
    return data_dir


def _wait(client: TestClient, job: str, until: tuple[str, ...] = ("done", "failed")) -> Any:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status = client.get(f"/train/{job}").json()
        if status["state"] in until:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job} still {status['state']} after {JOB_TIMEOUT_S} s")


def _named(client: TestClient, clip: bytes) -> str:
    answer = client.post("/predict", files={"file": ("c.wav", clip, "audio/wav")}).json()
    return str(answer["speaker"])


@pytest.mark.slow
def test_a_job_teaches_the_voice_live_and_rolling_back_forgets_it(
    make_client: Any, tmp_path: Path, alice_clips: Path, fresh_alice: list[bytes]
) -> None:
    client = make_client(data_dir=_store_with(tmp_path / "store", alice_clips))
    assert [_named(client, c) for c in fresh_alice].count("Alice") == 0

    started = client.post("/train")
    assert started.status_code == 202
    job = started.json()["job"]
    assert started.headers["location"] == f"/train/{job}"
    busy = client.post("/train")
    status = _wait(client, job)

    assert busy.status_code == 409
    assert busy.json()["detail"] == (
        f"a training job is running (job {job}: GET /train/{job}); start another when it has "
        "finished"
    )
    assert status["state"] == "done", status["detail"]
    assert status["progress"] == 1.0
    assert status["model"]["labels"] == ["Alice", "David", "Steve"]
    assert status["model"]["name"] == "default + Alice"
    assert status["detail"] == f"now serving version {status['model']['version']}"
    assert client.get("/model").json()["labels"] == ["Alice", "David", "Steve"]
    assert [_named(client, c) for c in fresh_alice].count("Alice") >= 7
    (version,) = (tmp_path / "store" / ".versions").glob("*-" + job)
    report = json.loads((version / "report.json").read_text())
    assert report["data_dir"] == str(tmp_path / "store")  # not the job's snapshot, now gone
    taught = [f for f in report["split"]["train"] + report["split"]["validation"]
              if f.startswith("Alice/")]  # fmt: skip
    assert sorted(taught) == sorted(f"Alice/{p.name}" for p in (tmp_path / "store/Alice").iterdir())

    versions = client.get("/models").json()["versions"]
    assert [(v["source"], v["active"], v["labels"]) for v in versions] == [
        ("configured", False, ["David", "Steve"]),
        ("trained", True, ["Alice", "David", "Steve"]),
    ]
    first = client.post(f"/models/{versions[0]['version']}/activate")
    assert first.status_code == 200 and first.json()["active"] is True
    assert [_named(client, c) for c in fresh_alice].count("Alice") == 0


@pytest.mark.slow
def test_a_restarted_server_serves_the_version_it_served(
    make_client: Any, tmp_path: Path, alice_clips: Path, trained_bundle: Path
) -> None:
    store = _store_with(tmp_path / "store", alice_clips)
    client = make_client(data_dir=store)
    assert _wait(client, client.post("/train").json()["job"])["state"] == "done"

    again = make_client(data_dir=store)
    # Configured with another model, it serves that: the versions grew from the shipped one.
    other_base = make_client(data_dir=store, model_dir=trained_bundle)

    assert again.get("/model").json()["labels"] == ["Alice", "David", "Steve"]
    assert other_base.get("/model").json()["name"] == trained_bundle.name


@pytest.mark.slow
def test_a_killed_job_fails_and_leaves_the_model_and_the_versions_as_they_were(
    make_client: Any, tmp_path: Path, alice_clips: Path
) -> None:
    client = make_client(data_dir=_store_with(tmp_path / "store", alice_clips))
    before = client.get("/model").json()["version"]
    job = client.post("/train").json()["job"]
    record = (tmp_path / "store" / ".jobs" / f"{job}.json").read_text()
    pid = int(record.split('"pid": ')[1].split("}")[0].split(",")[0])

    os.kill(pid, signal.SIGKILL)
    status = _wait(client, job)

    assert status["state"] == "failed"
    assert status["detail"] == (
        "the training process was killed (SIGKILL); the model being served is unchanged"
    )
    assert client.get("/model").json()["version"] == before
    assert [v["source"] for v in client.get("/models").json()["versions"]] == ["configured"]
    assert client.post("/train").status_code == 202  # the lock went with the process


@pytest.mark.slow
def test_a_job_whose_worker_is_killed_is_finished_by_another(
    tmp_path: Path, alice_clips: Path
) -> None:
    """The owner's SIGKILL leaves the training process running; the worker that replaces the
    owner serves the version once training ends, with nobody asking about the job."""
    store = _store_with(tmp_path / "store", alice_clips)
    command = [*voiceid_command(), "serve", "--workers", "2", "--data-dir", str(store)]
    with running(command, tmp_path, workers=2) as server:
        job = httpx.post(f"{server.url}/train", timeout=30).json()["job"]
        training = json.loads((store / ".jobs" / f"{job}.json").read_text())["pid"]
        os.kill(_parent_of(training), signal.SIGKILL)  # the worker that took POST /train
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline and "Alice" not in _served_labels(server.url):
            time.sleep(0.5)
        labels = [_served_labels(server.url) for _ in range(20)]  # both workers
        # the version is served a moment before the job's record says so (a loaded machine
        # makes that moment longer): wait for the record, not for the moment
        status = httpx.get(f"{server.url}/train/{job}", timeout=10).json()
        while time.monotonic() < deadline and status["state"] == "running":
            time.sleep(0.2)
            status = httpx.get(f"{server.url}/train/{job}", timeout=10).json()
        versions = httpx.get(f"{server.url}/models", timeout=10).json()["versions"]

    assert labels == [["Alice", "David", "Steve"]] * 20
    assert status["state"] == "done", status["detail"]
    assert status["detail"] == f"now serving version {status['model']['version']}"
    assert [(v["source"], v["active"]) for v in versions] == [
        ("configured", False), ("trained", True)
    ]  # fmt: skip


def _parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("PPid:")[1].split()[0])


def _served_labels(url: str) -> list[str]:
    labels: list[str] = httpx.get(f"{url}/model", timeout=10).json()["labels"]
    return labels


def _left_job(store: Path, job: str = "0123456789ab") -> str:
    """The files a job leaves when its worker and its training process have both stopped."""
    jobs = store / ".jobs"
    jobs.mkdir(parents=True)
    record = {"job": job, "state": "running", "progress": 0.4, "detail": "training",
              "created": "2026-01-01T00:00:00+00:00", "finished": None, "model": None,
              "pid": 2**22 + 1, "owner": 2**22 + 2}  # fmt: skip
    (jobs / f"{job}.json").write_text(json.dumps(record))
    (jobs / "current").write_text(job)
    (jobs / f"{job}.log").write_text("epoch 3/100\n")
    return job


def test_a_left_job_with_a_version_is_served_by_whoever_lists_the_versions(
    make_client: Any, tmp_path: Path, trained_bundle: Path
) -> None:
    store = tmp_path / "store"
    job = _left_job(store)
    shutil.copytree(trained_bundle, store / ".versions" / f"20260101T000000Z-{job}")
    client = make_client(data_dir=store)
    # The start-up watcher may be first; either way the version is served.

    versions = client.get("/models").json()["versions"]
    status = client.get(f"/train/{job}").json()

    assert [(v["source"], v["active"]) for v in versions] == [
        ("configured", False), ("trained", True)
    ]  # fmt: skip
    assert client.get("/model").json()["version"] == versions[1]["version"]
    assert (status["state"], status["detail"]) == (
        "done", f"now serving version {versions[1]['version']}"
    )  # fmt: skip


def test_a_left_job_without_a_version_fails_and_says_why(make_client: Any, tmp_path: Path) -> None:
    job = _left_job(tmp_path / "store")
    client = make_client(data_dir=tmp_path / "store")

    status = client.get(f"/train/{job}").json()

    assert status["state"] == "failed"
    assert status["detail"] == (
        "the server process that ran this job stopped, and its training process ended "
        "without a version; the model being served is unchanged"
    )


def test_a_left_version_that_does_not_load_is_removed(
    make_client: Any, tmp_path: Path, trained_bundle: Path
) -> None:
    store = tmp_path / "store"
    job = _left_job(store)
    version = store / ".versions" / f"20260101T000000Z-{job}"
    shutil.copytree(trained_bundle, version)
    (version / "network.npz").write_bytes(b"not the network")
    client = make_client(data_dir=store)

    status = client.get(f"/train/{job}").json()

    assert status["state"] == "failed"
    assert status["detail"].startswith("the new version does not load: ")
    assert not version.exists()
    assert [v["source"] for v in client.get("/models").json()["versions"]] == ["configured"]


def test_a_job_whose_owner_lives_is_left_to_it(make_client: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    job = _left_job(store)
    fd = os.open(store / ".jobs" / f"{job}.owner", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the owning worker holds it
    try:
        status = make_client(data_dir=store).get(f"/train/{job}").json()
    finally:
        os.close(fd)

    assert (status["state"], status["detail"]) == ("running", "training")


def test_a_speaker_with_too_few_clips_is_refused_before_any_job(
    make_client: Any, tmp_path: Path, alice_clips: Path
) -> None:
    client = make_client(data_dir=_store_with(tmp_path / "store", alice_clips, count=3))

    answer = client.post("/train")

    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "too few clips to train: 'Alice' has 3; each speaker needs at least 4 "
        "(5 or more recommended)"
    )
    assert not (tmp_path / "store" / ".jobs" / "current").exists()


@pytest.mark.slow
def test_a_job_whose_clips_are_unusable_fails_with_the_reason(
    make_client: Any, tmp_path: Path
) -> None:
    store = tmp_path / "store" / "Bob"
    store.mkdir(parents=True)
    for k in range(4):
        (store / f"{k}.wav").write_bytes(b"RIFF" + bytes(40))
    client = make_client(data_dir=tmp_path / "store")

    status = _wait(client, client.post("/train").json()["job"])

    assert status["state"] == "failed"
    assert status["detail"] == (
        "speaker 'Bob' has 0 usable clips; at least 4 are needed; skipped: "
        + "; ".join(f"Bob/{k}.wav: {hostile.DAMAGED_WAV}" for k in range(4))
    )


def test_a_server_without_tensorflow_says_it_cannot_train(
    make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.training.importlib.util.find_spec", lambda name: None)
    client = make_client(data_dir=tmp_path / "store")

    answer = client.post("/train")

    assert answer.status_code == 503
    assert answer.json()["detail"].startswith(
        "this server cannot train: tensorflow is not installed. Install the train extra"
    )


@pytest.mark.parametrize("job", ["0" * 12, "..etc", "ABCDEF123456", "x" * 200])
def test_an_unknown_job_is_404(client: TestClient, job: str) -> None:
    answer = client.get(f"/train/{job}")

    assert answer.status_code == 404
    assert answer.json()["detail"] == f"no training job {job!r}"


@pytest.mark.parametrize("version", ["0" * 12, "...", "default"])
def test_an_unknown_version_is_404(client: TestClient, version: str) -> None:
    answer = client.post(f"/models/{version}/activate")

    assert answer.status_code == 404
    assert answer.json()["detail"] == f"no model version {version!r}: GET /models lists them"


def test_the_configured_model_is_the_first_version_and_active(client: TestClient) -> None:
    model = client.get("/model").json()

    versions = client.get("/models").json()["versions"]

    assert versions == [
        {
            "version": model["version"],
            "name": "default",
            "created": model["created"],
            "labels": ["David", "Steve"],
            "metrics": model["metrics"],
            "source": "configured",
            "active": True,
            "problem": None,
        }
    ]


def test_strangers_stay_unknown_on_the_configured_version(
    client: TestClient, demo_clips: dict[str, list[bytes]]
) -> None:
    assert [_named(client, c) for c in demo_clips[STRANGER.name]] == ["unknown"] * 3


def test_a_training_process_that_cannot_start_is_a_503_and_frees_the_lock(
    make_client: Any, tmp_path: Path, alice_clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_process(*args: object, **kwargs: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr("service.training.asyncio.create_subprocess_exec", no_process)
    client = make_client(data_dir=_store_with(tmp_path / "store", alice_clips))

    first, second = client.post("/train"), client.post("/train")

    for answer in (first, second):  # the second is no 409: the lock went with the failure
        assert answer.status_code == 503
        assert answer.json()["detail"] == "cannot start the training process: Too many open files"
    assert not list((tmp_path / "store" / ".jobs").glob("*.store"))  # nor its copy of the store


class _HeldProcess:
    """A training process that runs until it is killed (when the client closes)."""

    pid = 0

    def __init__(self) -> None:
        self.killed = asyncio.Event()

    def kill(self) -> None:
        self.killed.set()

    async def wait(self) -> int:
        await self.killed.wait()
        return -signal.SIGKILL


@pytest.mark.parametrize("links", [True, False], ids=["hard links", "no hard links"])
def test_a_job_trains_on_and_is_named_after_the_store_as_it_started(
    make_client: Any, tmp_path: Path, alice_clips: Path, monkeypatch: pytest.MonkeyPatch,
    links: bool,
) -> None:  # fmt: skip
    """A speaker removed while the job runs stays in what it trains on, as in its name; where
    the file system has no hard links, the job's own store holds copies."""
    commands: list[tuple[str, ...]] = []
    if not links:

        def no_link(source: object, target: object) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr("service.training.os.link", no_link)

    async def held(*command: str, **kwargs: object) -> _HeldProcess:
        commands.append(command)
        return _HeldProcess()

    monkeypatch.setattr("service.training.asyncio.create_subprocess_exec", held)
    data_dir = _store_with(tmp_path / "store", alice_clips, count=4)
    shutil.copytree(data_dir / "Alice", data_dir / "Carl")
    client = make_client(data_dir=data_dir)

    started = client.post("/train")
    removed = client.delete("/speakers/Carl")
    command = commands[0]
    trained_on = Path(command[command.index("--store") + 1])

    assert (started.status_code, removed.status_code) == (202, 200)
    assert command[command.index("--name") + 1] == "default + Alice, Carl"
    assert sorted(p.name for p in trained_on.iterdir()) == ["Alice", "Carl"]
    assert len(list((trained_on / "Carl").iterdir())) == 4


def test_a_remembered_version_that_no_longer_loads_gives_way_to_the_configured_model(
    make_client: Any, tmp_path: Path, trained_bundle: Path
) -> None:
    """A version damaged since the last run must not leave a restarted server with no model."""
    store = tmp_path / "store"
    version = store / ".versions" / "20261204T000000Z-0123456789ab"
    shutil.copytree(trained_bundle, version)
    remembered = load_bundle(version).version
    (store / ".versions" / "active.json").write_text(json.dumps({
        "path": str(version), "version": remembered,
        "configured": load_bundle(MODEL_DIR).version,
    }))  # fmt: skip
    assert make_client(data_dir=store).get("/model").json()["version"] == remembered
    (version / "network.npz").write_bytes(b"damaged")

    client = make_client(data_dir=store)

    assert client.get("/ready").status_code == 200
    assert client.get("/model").json()["version"] == load_bundle(MODEL_DIR).version


def test_a_version_damaged_on_disk_is_listed_with_why_it_does_not_load(
    make_client: Any, tmp_path: Path, trained_bundle: Path
) -> None:
    """``GET /models`` says which version activating would refuse, in the 409's words, and
    notices when the damage is mended."""
    store = tmp_path / "store"
    version = store / ".versions" / "20261204T000000Z-0123456789ab"
    shutil.copytree(trained_bundle, version)
    client = make_client(data_dir=store)
    intact = client.get("/models").json()["versions"]
    network = (version / "network.npz").read_bytes()
    (version / "network.npz").write_bytes(network[:-1] + bytes([network[-1] ^ 1]))

    damaged = client.get("/models").json()["versions"]
    refused = client.post(f"/models/{damaged[1]['version']}/activate")
    (version / "network.npz").write_bytes(network)
    mended = client.get("/models").json()["versions"]

    assert [v["problem"] for v in intact] == [None, None]
    assert damaged[0]["problem"] is None
    assert damaged[1]["problem"].startswith(
        f"{version.name}/network.npz does not match its checksum: sha256 is "
    )
    assert refused.status_code == 409
    assert refused.json()["detail"] == damaged[1]["problem"]
    assert [v["problem"] for v in mended] == [None, None]


class _KilledWhileWriting:
    """A training process killed while it wrote its bundle: the temporary folder stays."""

    pid = 0

    def __init__(self, out: Path) -> None:
        self.partial = out.parent / f".{out.name}.x1y2z3"

    def kill(self) -> None:
        return None

    async def wait(self) -> int:
        self.partial.mkdir(parents=True)
        (self.partial / "model.keras").write_bytes(b"half")
        return -signal.SIGKILL


def test_a_job_killed_while_writing_leaves_no_partial_version(
    make_client: Any, tmp_path: Path, alice_clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    processes: list[_KilledWhileWriting] = []

    async def killed(*command: str, **kwargs: object) -> _KilledWhileWriting:
        processes.append(_KilledWhileWriting(Path(command[command.index("--out") + 1])))
        return processes[-1]

    monkeypatch.setattr("service.training.asyncio.create_subprocess_exec", killed)
    store = _store_with(tmp_path / "store", alice_clips, count=4)
    client = make_client(data_dir=store)

    status = _wait(client, client.post("/train").json()["job"])

    assert status["state"] == "failed"
    assert not processes[0].partial.exists()
    assert [p.name for p in (store / ".versions").iterdir()] == []


# --- a store that cannot be written ---------------------------------------------------------


def test_a_store_made_read_only_refuses_a_job_with_503_and_lists_on(
    make_client: Any, tmp_path: Path, alice_clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(data_dir=_store_with(tmp_path / "store", alice_clips, count=4))
    read_only(monkeypatch, tmp_path / "store")

    answer = client.post("/train")

    assert (answer.status_code, answer.json()) == (503, {
        "detail": "the speaker store cannot be written (Read-only file system): no training "
                  "job was started; its folder must be made writable again"})  # fmt: skip
    assert client.get("/models").status_code == 200
    assert not (tmp_path / "store" / ".jobs").exists()


def _record_writes_fail_while_full(monkeypatch: pytest.MonkeyPatch, disk: dict[str, bool]) -> None:
    """Job records written while ``disk["full"]`` fail as a full disk fails them."""
    real_replace_json = paths.replace_json

    def replace_json(path: Path, record: object) -> None:
        if disk["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_replace_json(path, record)

    monkeypatch.setattr("service.training.replace_json", replace_json)


class _FillsTheDisk:
    """A training process that fails as the disk fills up: from then on, ``disk["full"]``."""

    pid = 0

    def __init__(self, log: Path, disk: dict[str, bool]) -> None:
        self.log, self.disk = log, disk

    def kill(self) -> None:
        return None

    async def wait(self) -> int:
        self.log.write_text("voiceid enrol: error: cannot write a bundle at 'v': No space left "
                            "on device\n")  # fmt: skip
        self.disk["full"] = True
        return 2


def test_a_job_that_fills_the_disk_fails_and_says_so_though_its_record_cannot_be_written(
    make_client: Any, tmp_path: Path, alice_clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = {"full": False}

    async def fills(*command: str, stdout: Any, **kwargs: object) -> _FillsTheDisk:
        return _FillsTheDisk(Path(stdout.name), disk)

    _record_writes_fail_while_full(monkeypatch, disk)
    monkeypatch.setattr("service.training.asyncio.create_subprocess_exec", fills)
    client = make_client(data_dir=_store_with(tmp_path / "store", alice_clips, count=4))
    job = client.post("/train").json()["job"]
    failed = "cannot write a bundle at 'v': No space left on device"

    status = _wait(client, job)
    listed, again = client.get("/models"), client.post("/train")
    disk["full"] = False  # space is freed
    after = client.get(f"/train/{job}").json()

    assert (status["state"], status["detail"]) == ("failed", failed)
    assert listed.status_code == 200
    assert (again.status_code, again.json()) == (507, {
        "detail": "the disk of the speaker store is full: no training job was started; free "
                  "space on it, or lower the store's size limit to leave room "
                  "(VOICEID_MAX_STORE_BYTES)"})  # fmt: skip
    assert (after["state"], after["detail"]) == ("failed", failed)
    record = json.loads((tmp_path / "store" / ".jobs" / f"{job}.json").read_text())
    assert (record["state"], record["detail"]) == ("failed", failed)


class _FailsNamingTheStore(_FillsTheDisk):
    """A training process whose error names a path in the server's speaker store."""

    def __init__(self, log: Path, store: Path) -> None:
        self.log, self.store = log, store

    async def wait(self) -> int:
        where = self.store.resolve() / ".versions" / ".v3"
        self.log.write_text(f"voiceid enrol: error: cannot write a bundle at '{where}': No "
                            "space left on device\n")  # fmt: skip
        return 2


def test_a_failed_job_names_the_store_by_its_folder_not_the_servers_path(
    make_client: Any, tmp_path: Path, alice_clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store_with(tmp_path / "voices", alice_clips, count=4)

    async def fails(*command: str, stdout: Any, **kwargs: object) -> _FailsNamingTheStore:
        return _FailsNamingTheStore(Path(stdout.name), store)

    monkeypatch.setattr("service.training.asyncio.create_subprocess_exec", fails)
    client = make_client(data_dir=store)

    status = _wait(client, client.post("/train").json()["job"])

    assert (status["state"], status["detail"]) == (
        "failed",
        "cannot write a bundle at 'voices/.versions/.v3': No space left on device",
    )


def test_a_left_job_finished_while_the_disk_is_full_is_finished_once(
    make_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = _left_job(tmp_path / "store")
    disk = {"full": True}
    _record_writes_fail_while_full(monkeypatch, disk)
    client = make_client(data_dir=tmp_path / "store")
    answers = [client.get(f"/train/{job}").json() for _ in range(3) if client.get("/models")]
    disk["full"] = False
    written = client.get(f"/train/{job}").json()

    assert [a["state"] for a in answers] == ["failed"] * 3
    assert written == answers[0]
    record = json.loads((tmp_path / "store" / ".jobs" / f"{job}.json").read_text())
    assert {key: record[key] for key in written} == written
    assert [r.message for r in caplog.records if "finishes it" in r.message] == [
        f"job {job}: the server process that ran it stopped; {os.getpid()} finishes it"
    ]


def test_a_job_s_process_is_told_to_end_itself_after_the_server_s_time_limit(
    make_client: Any, tmp_path: Path, alice_clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server killed while its job runs stops nothing: the process stops itself, a while
    after the server would have stopped it, and the job lock goes with it."""
    commands: list[tuple[str, ...]] = []

    async def held(*command: str, **kwargs: object) -> _HeldProcess:
        commands.append(command)
        return _HeldProcess()

    monkeypatch.setattr("service.training.asyncio.create_subprocess_exec", held)
    client = make_client(data_dir=_store_with(tmp_path / "store", alice_clips, count=4),
                         train_timeout_s=90)  # fmt: skip

    assert client.post("/train").status_code == 202
    assert commands[0][commands[0].index("--time-limit") + 1] == "120"


def test_an_activation_the_store_cannot_remember_serves_and_says_it_will_not_last(
    make_client: Any, tmp_path: Path, trained_bundle: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    store = tmp_path / "store"
    shutil.copytree(trained_bundle, store / ".versions" / "20261204T000000Z-0123456789ab")
    client = make_client(data_dir=store)
    trained = client.get("/models").json()["versions"][1]["version"]
    read_only(monkeypatch, store)

    answer = client.post(f"/models/{trained}/activate")

    assert (answer.status_code, answer.json()["active"]) == (200, True)
    assert [r.message for r in caplog.records if r.levelname == "WARNING"] == [
        f"version {trained} is served, but a restarted server will not serve it: the choice "
        "cannot be written to the speaker store (Read-only file system)"
    ]
    assert not (store / ".versions" / "active.json").exists()


def test_starting_a_job_removes_temporary_records_that_killed_writes_left(
    make_client: Any, tmp_path: Path, alice_clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def held(*command: str, **kwargs: object) -> _HeldProcess:
        return _HeldProcess()

    monkeypatch.setattr("service.training.asyncio.create_subprocess_exec", held)
    store = _store_with(tmp_path / "store", alice_clips, count=4)
    (store / ".jobs").mkdir()
    killed, live = store / ".jobs" / ".0123456789ab.json.k1ll3d", store / ".jobs" / ".current.l1v3"
    for path in (killed, live):
        path.write_text("{")
    os.utime(killed, (0, 0))

    job = make_client(data_dir=store).post("/train").json()["job"]

    assert sorted(p.name for p in (store / ".jobs").iterdir() if p.name.startswith(".")) == [
        live.name
    ]
    assert (store / ".jobs" / f"{job}.json").is_file()


class _WritesVersion:
    """A training process that writes ``bundle`` as its version and succeeds."""

    pid = 0

    def __init__(self, bundle: Path, out: Path) -> None:
        self.bundle, self.out = bundle, out

    def kill(self) -> None:
        return None

    async def wait(self) -> int:
        shutil.copytree(self.bundle, self.out)
        return 0


def test_a_version_the_workers_cannot_all_serve_fails_its_job_and_serves_none(
    make_client: Any, tmp_path: Path, alice_clips: Path, trained_bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    async def writes(*command: str, **kwargs: object) -> _WritesVersion:
        return _WritesVersion(trained_bundle, Path(command[command.index("--out") + 1]))

    def full(path: Path, record: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("service.training.asyncio.create_subprocess_exec", writes)
    store = _store_with(tmp_path / "store", alice_clips, count=4)
    client = make_client(data_dir=store, active_model_file=tmp_path / "active-model")
    before = client.get("/model").json()["version"]
    monkeypatch.setattr("service.model_store.replace_json", full)

    status = _wait(client, client.post("/train").json()["job"])

    assert (status["state"], status["detail"]) == ("failed", (
        "the new version cannot be served: the model was not changed: this server's workers "
        "share which model they serve through a file in its temporary folder, which cannot be "
        f"written (No space left on device); each serves the model it had ({before})"))  # fmt: skip
    assert client.get("/model").json()["version"] == before
    assert [v["source"] for v in client.get("/models").json()["versions"]] == ["configured"]
