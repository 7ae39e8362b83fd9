"""Training jobs: ``POST /train`` starts one, ``GET /train/{id}`` follows it.

A job runs ``voiceid enrol`` in a subprocess, never in a serving process: those must not import
TensorFlow. It trains a successor of the model being served from the bundle's kept training set
plus the speaker store's clips (``pipeline.enrol``) and writes it to ``<data_dir>/.versions/``
(atomically: a version is listed only once complete). When it succeeds, the server that started it
loads the new version, which every worker then follows through the shared active-model file;
requests in flight finish on the old one. When it fails or is killed, the served model is as it
was.

Several worker processes share the state on disk, under ``<data_dir>/.jobs/``: a job's record
(``<id>.json``, written by the worker that owns the job), its progress (``<id>.progress.json``,
written by the training process) and its log. One job runs at a time: the training process holds
an exclusive ``flock`` on ``.jobs/lock`` for its whole life, which the kernel releases however it
ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import re
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import MIN_CLIPS_PER_SPEAKER
from pipeline.errors import BundleError
from pipeline.speakers import SpeakerStore
from service.errors import (
    NotFoundError,
    TrainingBusyError,
    TrainingUnavailableError,
    UnprocessableError,
)
from service.model_store import ModelStore
from service.versions import Versions

__all__ = ["JOB_ID", "Trainer", "can_train"]

log = logging.getLogger("voiceid.service")
JOB_ID = re.compile(r"[0-9a-f]{12}")
KEEP_JOBS = 50  # finished job records kept; older ones are removed when a job starts
ACTIVATING_GRACE_S = 30.0  # a job trained but not marked done for this long was left behind
FINAL = ("done", "failed")
ORPHANED = (
    "the server process that ran this job stopped before it finished; "
    "the model being served is unchanged"
)


def can_train() -> str | None:
    """Why this installation cannot train (the ``train`` extra is missing), or None."""
    for module in ("tensorflow", "keras"):
        if importlib.util.find_spec(module) is None:
            return (
                f"this server cannot train: {module} is not installed. Install the train extra "
                "(pip install 'voiceid[train]'; in a checkout, `make teach` serves with it), or "
                "teach voices with `voiceid enrol` elsewhere and load the result with /admin/reload"
            )
    return None


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _write_json(path: Path, record: dict[str, Any]) -> None:
    """Replace ``path`` by ``record`` atomically: readers see the old or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


def _failure_detail(log_path: Path, code: int) -> str:
    """Why the training process failed: its own error line, or how it ended."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("voiceid enrol: error: "):
            return line.removeprefix("voiceid enrol: error: ")
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"the training process was killed ({name}); the model being served is unchanged"
    tail = next((line for line in reversed(lines) if line.strip()), "")
    return f"the training process failed (exit code {code}){': ' + tail[-300:] if tail else ''}"


@dataclass
class Trainer:
    """Starts and follows the training jobs of one speaker store."""

    data_dir: Path
    store: ModelStore
    versions: Versions
    speakers: SpeakerStore
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        self.jobs_dir = self.data_dir / ".jobs"
        self._tasks: set[asyncio.Task[None]] = set()
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    # -- reading ---------------------------------------------------------------------------

    def _record_path(self, job: str) -> Path:
        if not JOB_ID.fullmatch(job):
            raise NotFoundError(f"no training job {job!r}")
        return self.jobs_dir / f"{job}.json"

    def status(self, job: str) -> dict[str, Any]:
        """A job's state as ``GET /train/{id}`` gives it; :class:`NotFoundError` if unknown."""
        record = _read_json(self._record_path(job))
        if record is None:
            raise NotFoundError(f"no training job {job!r}")
        if record.get("state") in FINAL:
            return record
        progress = _read_json(self.jobs_dir / f"{job}.progress.json") or {}
        record["progress"] = progress.get("progress", record.get("progress", 0.0))
        record["detail"] = progress.get("detail", record.get("detail", ""))
        # The training process is gone and its owner has not written the outcome yet: it is
        # activating the new version, or the owner itself is gone.
        gone = record.get("state") == "running" and not _alive(record.get("pid"))
        if gone and time.time() - self._mtime(job) > ACTIVATING_GRACE_S:
            record |= {"state": "failed", "detail": ORPHANED}
        return record

    def _mtime(self, job: str) -> float:
        times = []
        for name in (f"{job}.json", f"{job}.progress.json"):
            with contextlib.suppress(OSError):
                times.append((self.jobs_dir / name).stat().st_mtime)
        return max(times, default=0.0)

    def running_job(self) -> str | None:
        text = None
        with contextlib.suppress(OSError):
            text = (self.jobs_dir / "current").read_text().strip()
        return text if text and JOB_ID.fullmatch(text) else None

    # -- starting --------------------------------------------------------------------------

    def check_store(self) -> None:
        """:class:`UnprocessableError` naming the store's speakers with too few clips."""
        few = [f"{s.name!r} has {s.clips}" for s in self.speakers.speakers()
               if s.clips < MIN_CLIPS_PER_SPEAKER]  # fmt: skip
        if few:
            raise UnprocessableError(
                f"too few clips to train: {', '.join(few)}; each speaker needs at least "
                f"{MIN_CLIPS_PER_SPEAKER} (5 or more recommended)"
            )

    def _lock(self) -> int:
        """The job lock's descriptor, locked; :class:`TrainingBusyError` while a job holds it."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.jobs_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            running = self.running_job()
            named = f" (job {running}: GET /train/{running})" if running else ""
            raise TrainingBusyError(
                f"a training job is running{named}; start another when it has finished"
            ) from None
        return fd

    async def start(self) -> str:
        """Start a job training a successor of the model being served; its id."""
        reason = can_train()
        if reason:
            raise TrainingUnavailableError(reason)
        base = self.store.current.path
        self.check_store()
        fd = self._lock()
        try:
            job = secrets.token_hex(6)
            out = self.versions.new_folder(job)
            record = {"job": job, "state": "queued", "progress": 0.0, "detail": "starting",
                      "created": _now(), "finished": None, "model": None,
                      "base": self.store.current.version}  # fmt: skip
            _write_json(self.jobs_dir / f"{job}.json", record)
            (self.jobs_dir / "current").write_text(job)
            try:
                process = await self._spawn(job, base, out, fd)
            except OSError as exc:
                detail = f"cannot start the training process: {exc.strerror or exc}"
                self._finish(job, record, detail)
                raise TrainingUnavailableError(detail) from exc
        finally:
            os.close(fd)  # the training process holds the lock now
        record |= {"state": "running", "pid": process.pid}
        _write_json(self.jobs_dir / f"{job}.json", record)
        self._prune(keep=job)
        task = asyncio.create_task(self._follow(job, record, process, out))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _spawn(
        self, job: str, base: Path, out: Path, lock_fd: int
    ) -> asyncio.subprocess.Process:
        command = [sys.executable, "-m", "voiceid", "enrol", str(base), "--store",
                   str(self.data_dir), "--out", str(out), "--cache-dir",
                   str(self.data_dir / ".cache"), "--progress-file",
                   str(self.jobs_dir / f"{job}.progress.json"), "--name",
                   self._version_name()]  # fmt: skip
        env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        with (self.jobs_dir / f"{job}.log").open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                pass_fds=(lock_fd,), env=env, start_new_session=True,
            )  # fmt: skip
        self._processes[job] = process
        return process

    def _version_name(self) -> str:
        """The new version's name: the configured model's and the store's voices."""
        base = self.versions.configured_name()
        voices = [s.name for s in self.speakers.speakers()]
        if not voices:
            return f"{base}, retrained"
        return f"{base} + {', '.join(voices) if len(voices) <= 3 else f'{len(voices)} voices'}"

    # -- finishing -------------------------------------------------------------------------

    async def _follow(
        self, job: str, record: dict[str, Any], process: asyncio.subprocess.Process, out: Path
    ) -> None:
        try:
            code = await asyncio.wait_for(process.wait(), self.timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            self._finish(job, record, f"training took longer than {self.timeout_s:g} s and was "
                         "stopped; the model being served is unchanged")  # fmt: skip
            return
        finally:
            self._processes.pop(job, None)
        if code != 0:
            self._finish(job, record, _failure_detail(self.jobs_dir / f"{job}.log", code))
            return
        try:
            path = self.versions.keep_new(out)
            bundle = await self.store.load(path)
        except BundleError as exc:
            self._finish(job, record, f"the new version does not load: {exc}")
            return
        self.versions.remember_active(bundle)
        log.info("job %s: now serving %s, labels %s", job, bundle.version, list(bundle.labels))
        record |= {"state": "done", "progress": 1.0, "finished": _now(),
                   "detail": f"now serving version {bundle.version}",
                   "model": self.versions.entry_of(bundle.path, active=bundle)}  # fmt: skip
        _write_json(self.jobs_dir / f"{job}.json", record)

    def _finish(self, job: str, record: dict[str, Any], detail: str) -> None:
        log.error("job %s failed: %s", job, detail)
        record |= {"state": "failed", "finished": _now(), "detail": detail}
        _write_json(self.jobs_dir / f"{job}.json", record)

    def _prune(self, keep: str) -> None:
        records = sorted(self.jobs_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
        finished = [
            p for p in records if p.stem != keep and (_read_json(p) or {}).get("state") in FINAL
        ]
        for path in finished[: max(len(finished) - KEEP_JOBS, 0)]:
            for suffix in (".json", ".progress.json", ".log"):
                with contextlib.suppress(OSError):
                    (self.jobs_dir / f"{path.stem}{suffix}").unlink()

    async def close(self) -> None:
        """Stop this server's running jobs (the server is shutting down)."""
        for job, process in list(self._processes.items()):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            log.warning("job %s stopped: the server is shutting down", job)
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
