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
an exclusive ``flock`` on ``.jobs/lock`` for its whole life, and the worker that owns the job one
on ``.jobs/<id>.owner`` until the job is done or failed; the kernel releases each however its
holder ends.

A job outlives the worker that owns it (the training process runs in a session of its own). When
that worker is killed, another adopts the job once its training has ended (both locks are free):
it serves the version the job made, or fails the job and removes the version when there is none
or it does not load. Workers adopt when asked about the job or the versions, when a job is
started, and, from start-up while an unfinished job is left (a restarted worker, a restarted
server), by looking every ``ADOPT_POLL_S``. So every listed version is the configured one or one
of a job that is done, or still running.

A disk that fills up (or a store made read-only) stops no answer: ``POST /train`` then starts no
job and says why, and a job that ends while its final record cannot be written is answered from
the memory of the worker that finished it, which keeps the job's owner lock (no other worker
takes it for one whose server stopped) and writes the record at its next look.
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
import shutil
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import MIN_CLIPS_PER_SPEAKER
from pipeline.errors import BundleError
from pipeline.paths import remove_stale, replace_json, replace_text
from pipeline.speakers import SpeakerStore, refused_changes
from service.errors import (
    ModelNotSwitchedError,
    NotFoundError,
    TrainingBusyError,
    TrainingUnavailableError,
    UnprocessableError,
)
from service.model_store import ModelStore, without_paths
from service.versions import Versions

__all__ = ["JOB_ID", "Trainer", "can_train"]

log = logging.getLogger("voiceid.service")
JOB_ID = re.compile(r"[0-9a-f]{12}")
KEEP_JOBS = 50  # finished job records kept; older ones are removed when a job starts
ADOPT_POLL_S = 1.0  # a worker watching a job whose owner stopped looks this often
# A training process ends itself this long after its server would have stopped it: for when no
# server is left to (one killed while its job ran), so that no job holds the job lock forever.
OWN_LIMIT_GRACE_S = 30
FINAL = ("done", "failed")


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _try_lock(path: Path) -> int | None:
    """A descriptor of ``path`` holding its exclusive ``flock``, or None while another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _failure_detail(log_path: Path, code: int | None) -> str:
    """Why the training process failed: its own error line, or how it ended (``code`` None: its
    owner was gone, so nobody saw)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("voiceid enrol: error: "):
            return line.removeprefix("voiceid enrol: error: ")
    if code is None:
        return (
            "the server process that ran this job stopped, and its training process ended "
            "without a version; the model being served is unchanged"
        )
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
        self._owned: dict[str, int] = {}  # job -> descriptor holding its owner lock
        self._settled: dict[str, dict[str, Any]] = {}  # final records the disk refused so far
        self._watcher: asyncio.Task[None] | None = None
        self._adopting = asyncio.Lock()  # this process's callers wait for its adoption to end

    # -- reading ---------------------------------------------------------------------------

    def _record_path(self, job: str) -> Path:
        if not JOB_ID.fullmatch(job):
            raise NotFoundError(f"no training job {job!r}")
        return self.jobs_dir / f"{job}.json"

    async def status(self, job: str) -> dict[str, Any]:
        """A job's state as ``GET /train/{id}`` gives it; :class:`NotFoundError` if unknown."""
        path = self._record_path(job)
        self._write_settled()
        if job in self._settled:
            return dict(self._settled[job])
        record = _read_json(path)
        if record is not None and record.get("state") not in FINAL:
            await self.adopt()
            record = _read_json(path)
        if record is None:
            raise NotFoundError(f"no training job {job!r}")
        if record.get("state") in FINAL:
            return record
        progress = _read_json(self.jobs_dir / f"{job}.progress.json") or {}
        record["progress"] = progress.get("progress", record.get("progress", 0.0))
        record["detail"] = progress.get("detail", record.get("detail", ""))
        return record

    def _unfinished(self) -> str | None:
        """The latest job, when it is neither done nor failed."""
        job = self.running_job()
        if job is None:
            return None
        record = _read_json(self.jobs_dir / f"{job}.json")
        return job if record is not None and record.get("state") not in FINAL else None

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
        fd = _try_lock(self.jobs_dir / "lock")
        if fd is None:
            running = self.running_job()
            named = f" (job {running}: GET /train/{running})" if running else ""
            raise TrainingBusyError(
                f"a training job is running{named}; start another when it has finished"
            )
        return fd

    async def start(self) -> str:
        """Start a job training a successor of the model being served; its id."""
        reason = can_train()
        if reason:
            raise TrainingUnavailableError(reason)
        await self.adopt()  # the last job, if its owner stopped: its version is served first
        base = self.store.current.path
        self.check_store()
        with refused_changes("no training job was started"):
            fd = self._lock()
        try:
            with refused_changes("no training job was started"):
                job, record, out = self._begin()
            try:
                voices = self._snapshot(job)
                process = await self._spawn(job, base, out, fd, self._version_name(voices))
            except OSError as exc:
                detail = f"cannot start the training process: {exc.strerror or exc}"
                self._finish(job, record, detail)
                raise TrainingUnavailableError(detail) from exc
        finally:
            os.close(fd)  # the training process holds the lock now
        record |= {"state": "running", "pid": process.pid}
        with contextlib.suppress(OSError):  # the record says so once it ends, disk permitting
            replace_json(self.jobs_dir / f"{job}.json", record)
        self._prune(keep=job)
        task = asyncio.create_task(self._follow(job, record, process, out))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def _begin(self) -> tuple[str, dict[str, Any], Path]:
        """A new job's id, record and version folder: its record written, its owner lock held,
        and it named the current job; when the disk refuses, nothing of it is left."""
        job = secrets.token_hex(6)
        out = self.versions.new_folder(job)
        record = {"job": job, "state": "queued", "progress": 0.0, "detail": "starting",
                  "created": _now(), "finished": None, "model": None,
                  "base": self.store.current.version, "owner": os.getpid()}  # fmt: skip
        path = self.jobs_dir / f"{job}.json"
        try:
            replace_json(path, record)
            owner = _try_lock(self.jobs_dir / f"{job}.owner")
            if owner is not None:  # always, the file being new: held until the job ends
                self._owned[job] = owner
            replace_text(self.jobs_dir / "current", job)
        except BaseException:
            self._release(job)
            for left in (path, self.jobs_dir / f"{job}.owner"):
                left.unlink(missing_ok=True)
            raise
        return job, record, out

    def _snapshot_dir(self, job: str) -> Path:
        return self.jobs_dir / f"{job}.store"

    def _snapshot(self, job: str) -> list[str]:
        """Hard-link the store's clips as they are now into job ``job``'s own folder (hidden,
        so no speaker), and name the voices among them: the job trains on exactly these and is
        named after them, whatever the store gains or loses while it runs. Links share the
        clips' bytes, and the store never changes a clip in place; a file system without hard
        links gets copies."""
        root = self._snapshot_dir(job)
        root.mkdir()
        voices = set()
        for name, path in self.speakers.clip_files():
            (root / name).mkdir(exist_ok=True)
            try:
                _link_or_copy(path, root / name / path.name)
            except FileNotFoundError:  # removed since it was listed
                continue
            voices.add(name)
        return sorted(voices)

    async def _spawn(
        self, job: str, base: Path, out: Path, lock_fd: int, name: str
    ) -> asyncio.subprocess.Process:
        command = [sys.executable, "-m", "voiceid", "enrol", str(base), "--store",
                   str(self._snapshot_dir(job)), "--store-source", str(self.data_dir), "--out",
                   str(out), "--cache-dir", str(self.data_dir / ".cache"), "--progress-file",
                   str(self.jobs_dir / f"{job}.progress.json"), "--name", name,
                   "--time-limit", f"{self.timeout_s + OWN_LIMIT_GRACE_S:g}"]  # fmt: skip
        env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        with (self.jobs_dir / f"{job}.log").open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                pass_fds=(lock_fd,), env=env, start_new_session=True,
            )  # fmt: skip
        self._processes[job] = process
        return process

    def _version_name(self, voices: list[str]) -> str:
        """The new version's name: the configured model's and the store's ``voices``."""
        base = self.versions.configured_name()
        if not voices:
            return f"{base}, retrained"
        return f"{base} + {', '.join(voices) if len(voices) <= 3 else f'{len(voices)} voices'}"

    # -- finishing -------------------------------------------------------------------------

    async def _follow(
        self, job: str, record: dict[str, Any], process: asyncio.subprocess.Process, out: Path
    ) -> None:
        try:
            code = await self._wait(job, process)
            if code is None:
                self._finish(job, record, f"training took longer than {self.timeout_s:g} s and "
                             "was stopped; the model being served is unchanged", out)  # fmt: skip
            elif code != 0:
                self._finish(job, record, _failure_detail(self.jobs_dir / f"{job}.log", code), out)
            else:
                await self._serve(job, record, out)
        finally:
            if job not in self._settled:  # else released once its record is written
                self._release(job)

    async def _wait(self, job: str, process: asyncio.subprocess.Process) -> int | None:
        """The training process's exit code; None when it ran out of time and was killed."""
        try:
            return await asyncio.wait_for(process.wait(), self.timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            return None
        finally:
            self._processes.pop(job, None)

    async def _serve(self, job: str, record: dict[str, Any], out: Path) -> None:
        """Serve the version job ``job`` wrote to ``out`` on every worker, and say so."""
        try:
            path = self.versions.keep_new(out)
            bundle = await self.store.load(path)
        except BundleError as exc:
            self._finish(job, record, f"the new version does not load: {exc}", out)
            return
        except ModelNotSwitchedError as exc:
            self._finish(job, record, f"the new version cannot be served: {exc}", out)
            return
        self.versions.remember_active(bundle)
        shutil.rmtree(self._snapshot_dir(job), ignore_errors=True)
        log.info("job %s: now serving %s, labels %s", job, bundle.version, list(bundle.labels))
        record |= {"state": "done", "progress": 1.0, "finished": _now(),
                   "detail": f"now serving version {bundle.version}",
                   "model": self.versions.entry_of(bundle.path, active=bundle)}  # fmt: skip
        self._settle(job, record)

    def _finish(
        self, job: str, record: dict[str, Any], detail: str, out: Path | None = None
    ) -> None:
        """Mark ``job`` failed, and remove what it wrote to ``out``: no version is listed that
        no job made."""
        log.error("job %s failed: %s", job, detail)
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
        # A bundle write the process did not finish (killed mid-write) left its temporary
        # folder beside the versions, hidden: ".<time>-<job>.<random>".
        for partial in self.versions.root.glob(f".*-{job}.*"):
            shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(self._snapshot_dir(job), ignore_errors=True)
        # The store's own path is the server's business: clients see the folder's name.
        record |= {"state": "failed", "finished": _now(),
                   "detail": without_paths(detail, self.data_dir)}  # fmt: skip
        self._settle(job, record)

    def _settle(self, job: str, record: dict[str, Any]) -> None:
        """Write job ``job``'s final ``record``, then let go of the job. While the disk refuses
        it (full), this process keeps the record, answers with it, holds the job's owner lock
        (so that no other worker takes the job for one whose server stopped) and writes it at
        its next look (:meth:`_write_settled`)."""
        self._settled[job] = record
        self._write_settled(say=True)

    def _write_settled(self, *, say: bool = False) -> None:
        for job, record in list(self._settled.items()):
            try:
                replace_json(self.jobs_dir / f"{job}.json", record)
            except OSError as exc:
                if say:  # once, not at every look
                    log.error("job %s is %s, but its record cannot be written yet: %s", job,
                              record["state"], exc.strerror or exc)  # fmt: skip
                continue
            del self._settled[job]
            self._release(job)

    def _release(self, job: str) -> None:
        fd = self._owned.pop(job, -1)
        if fd >= 0:
            os.close(fd)

    # -- adopting a job whose owner stopped ------------------------------------------------

    async def adopt(self) -> None:
        """Finish the latest job if the worker that owned it stopped and its training has ended:
        serve its version, or fail it. Nothing when there is no such job, or while another
        worker is at it."""
        async with self._adopting:
            self._write_settled()
            job = self._unfinished()
            if job is None or job in self._owned or job in self._settled:
                return
            try:
                await self._adopt_if_free(job)
            except OSError as exc:  # the store cannot be written: the next look tries again
                log.error("job %s: its server process stopped, and it cannot be finished "
                          "yet: %s", job, exc.strerror or exc)  # fmt: skip

    async def _adopt_if_free(self, job: str) -> None:
        lock = _try_lock(self.jobs_dir / "lock")  # free once the training process has ended
        if lock is None:
            return
        try:
            owner = _try_lock(self.jobs_dir / f"{job}.owner")  # free once its owner is gone
            if owner is None:
                return
            try:
                await self._adopt(job)
            finally:
                os.close(owner)
        finally:
            os.close(lock)

    async def _adopt(self, job: str) -> None:
        record = _read_json(self.jobs_dir / f"{job}.json")
        if record is None or record.get("state") in FINAL:  # another worker was first
            return
        log.warning("job %s: the server process that ran it stopped; %d finishes it", job,
                    os.getpid())  # fmt: skip
        out = self.versions.folder_of(job)
        if out is None:
            self._finish(job, record, _failure_detail(self.jobs_dir / f"{job}.log", None))
        else:
            await self._serve(job, record, out)

    def watch(self) -> None:
        """At start-up, while a job is left unfinished, adopt it as soon as it can be."""
        job = self._unfinished()
        if job is not None and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(job))

    async def _watch(self, job: str) -> None:
        while self._unfinished() == job:
            await self.adopt()
            await asyncio.sleep(ADOPT_POLL_S)

    def _prune(self, keep: str) -> None:
        """Remove the oldest finished jobs' files beyond ``KEEP_JOBS``, and the temporary files
        of record writes that a kill interrupted (hidden, an hour old)."""
        remove_stale(p for p in self.jobs_dir.glob(".*") if p.is_file() and not p.is_symlink())
        records = sorted(self.jobs_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
        finished = [
            p for p in records if p.stem != keep and (_read_json(p) or {}).get("state") in FINAL
        ]
        for path in finished[: max(len(finished) - KEEP_JOBS, 0)]:
            for suffix in (".json", ".progress.json", ".log", ".owner"):
                with contextlib.suppress(OSError):
                    (self.jobs_dir / f"{path.stem}{suffix}").unlink()

    async def close(self) -> None:
        """Stop this server's running jobs (the server is shutting down)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for job, process in list(self._processes.items()):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            log.warning("job %s stopped: the server is shutting down", job)
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError as exc:  # EPERM, EXDEV, EMLINK...: no link here, so the bytes themselves
        log.info("copying %s, which cannot be linked: %s", source, exc.strerror or exc)
        shutil.copyfile(source, target)
