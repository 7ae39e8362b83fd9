"""``voiceid serve``: run the app under uvicorn."""

from __future__ import annotations

import copy
import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG
from uvicorn.logging import DefaultFormatter

from pipeline.errors import BundleError, ParameterError
from pipeline.paths import nearest_existing, temp_dir
from service.protocol import OneWriteHttpProtocol
from service.settings import SERVE_OPTIONS, Settings, settings_from_env, unknown_variables
from service.sites import listens_everywhere

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "app_from_env",
    "check_address",
    "check_data_dir",
    "check_model",
    "log_config",
    "open_without_key",
    "serve",
]

# Connection limits, as uvicorn allows them (its header size cap exists only for the slower h11
# parser, not httptools, which serving uses).
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
MAX_CONNECTIONS = 256  # per worker; more get 503 at once instead of queueing without bound
# uvicorn reads a /listen message whole up to this many times the app's limit
# (VOICEID_LISTEN_MAX_FRAME_BYTES), so that the app refuses a frame over its limit itself, naming
# the setting; only a message bigger still is refused by uvicorn, unread, to bound memory.
WS_MAX_SIZE_FACTOR = 4
# Set by `voiceid serve` for its workers: whom they die with (no VOICEID_ prefix: no setting).
SUPERVISOR_PID = "_VOICEID_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def app_from_env() -> FastAPI:
    """The app factory uvicorn's workers call: settings come from ``VOICEID_*``."""
    _die_with_supervisor()
    # Imported here: `voiceid serve`'s parent process only starts the workers, and importing
    # the app there (0.3 s of CPU, about 30 MB) would delay them and hold memory nothing uses.
    from service.app import create_app

    return create_app(Settings())


def _die_with_supervisor() -> None:
    """In a worker process of ``voiceid serve``, have the kernel kill this process when the
    supervisor that started it dies. uvicorn's workers outlive a supervisor killed with
    SIGKILL (or by the OOM killer): unsupervised, they would go on holding the port, and the
    restarted server could not listen on it. Killed so, a worker is as if killed with it:
    what it was writing is whole or not there, and a training job it started is adopted."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if supervisor is None or int(supervisor) == os.getpid() or not sys.platform.startswith("linux"):
        return  # not a worker: `voiceid serve --workers 1`, or uvicorn run by hand
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(supervisor):  # it died before the call above
        os.kill(os.getpid(), signal.SIGKILL)


def serve(
    *,
    model_dir: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    workers: int | str | None = None,
    data_dir: Path | None = None,
) -> None:
    """Serve with the command line's values over the ``VOICEID_*`` environment;
    :class:`ParameterError` when a setting is wrong."""
    overrides = {"model_dir": model_dir, "host": host, "port": port, "workers": workers,
                 "data_dir": data_dir}  # fmt: skip
    given = {name: value for name, value in overrides.items() if value is not None}
    for name, value in given.items():
        # Through the environment, so that every worker process sees the same settings.
        os.environ[Settings.env_name(name)] = str(value)
    settings = settings_from_env({name: SERVE_OPTIONS[name] for name in given})
    refusal = open_without_key(settings)
    if refusal:
        raise ParameterError(refusal)
    check_model(settings)
    check_data_dir(settings)
    check_address(settings)
    os.environ[SUPERVISOR_PID] = str(os.getpid())  # its workers die with it
    # One active-model file for this server's workers, so that a reload reaches them all.
    shared = Path(tempfile.mkdtemp(prefix="voiceid-serve-", dir=temp_dir()))
    os.environ["VOICEID_ACTIVE_MODEL_FILE"] = str(shared / "active-model")
    for unknown in unknown_variables(os.environ):
        warnings.warn(unknown, stacklevel=1)
    workers = settings.worker_count()  # reads the cgroup's limits: once
    _say_starting(settings, workers)
    try:
        uvicorn.run(
            "service.main:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=settings.log_level,
            log_config=log_config(settings.log_level),
            access_log=False,
            http=OneWriteHttpProtocol,  # each answer in one write (service.protocol)
            timeout_keep_alive=KEEP_ALIVE_S,
            limit_concurrency=MAX_CONNECTIONS,
            ws_max_size=settings.listen_max_frame_bytes * WS_MAX_SIZE_FACTOR,
            ws_per_message_deflate=False,
        )
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with voiceid's own loggers on its handler at ``level``:
    left unconfigured, their lines (which model a worker serves, ...) went nowhere below
    WARNING, and the rest out without a level."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["voiceid"] = {"handlers": ["default"], "level": LOG_LEVELS[level],
                                    "propagate": False}  # fmt: skip
    return config


def _say_starting(settings: Settings, workers: int) -> None:
    """The server's first line, as uvicorn writes its own (which configures logging only as it
    starts): the version, the model, the ``workers``, the address and whether a key is needed."""
    if LOG_LEVELS[settings.log_level] > logging.INFO:
        return
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    key = "API key required" if settings.api_key is not None else "no API key"
    line = (
        f"voiceid {metadata.version('voiceid')}: model {settings.model_dir}, {workers} "
        f"worker{'s' if workers > 1 else ''} on http://{host}:{settings.port}, {key}"
    )
    record = logging.makeLogRecord({"levelno": logging.INFO, "levelname": "INFO", "msg": line})
    print(DefaultFormatter("%(levelprefix)s %(message)s").format(record), file=sys.stderr)


def check_model(settings: Settings) -> None:
    """Raise :class:`BundleError` when the model to serve does not load, saying which setting
    names it: a server without a model answers nothing but 503. With a models root set, a
    server may start without one on purpose, to load one later through /admin/reload."""
    if settings.models_root is not None:
        return
    from pipeline.bundle import load_bundle  # here: the workers load it again, for themselves

    try:
        load_bundle(settings.model_dir)
    except BundleError as exc:
        raise BundleError(
            f"{exc} (--model or {Settings.env_name('model_dir')} names the model to serve; "
            f"with {Settings.env_name('models_root')} set, the server starts without one)"
        ) from exc


def check_data_dir(settings: Settings) -> None:
    """Raise :class:`ParameterError` when the speaker store's folder is not a folder, or cannot
    be made or written where it is named: every route of the store would fail on it. The
    folder itself is made on the first clip stored."""
    path = settings.data_dir
    found = nearest_existing(path)
    named = f"(--data-dir or {Settings.env_name('data_dir')} names the speaker store)"
    if found == path and not path.is_dir():
        raise ParameterError(f"speaker store {str(path)!r} is not a folder {named}")
    if not found.is_dir():
        raise ParameterError(
            f"speaker store {str(path)!r} cannot be made: {str(found)!r} is not a folder {named}"
        )
    if not os.access(found, os.W_OK | os.X_OK):
        raise ParameterError(
            f"speaker store {str(path)!r} cannot be written: this process (uid {os.geteuid()}) "
            f"may not write in {str(found)!r} {named}"
        )


def check_address(settings: Settings) -> None:
    """Raise :class:`ParameterError` when the server could not listen where it is asked to: the
    port taken by another program, an address not of this machine, a name that does not
    resolve, a port under 1024 without the right. The socket is bound as uvicorn binds it (the
    address reused) and closed at once; uvicorn, not this check, holds it for the workers."""
    host, port = settings.host, settings.port
    named = f"(--host and --port, or {Settings.env_name('host')} and {Settings.env_name('port')})"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except socket.gaierror as exc:
        raise ParameterError(
            f"cannot listen on {host!r} port {port}: {host!r} is not an address, nor a name "
            f"this machine resolves: use an address such as 127.0.0.1 {named}"
        ) from exc
    except OSError as exc:
        raise ParameterError(
            f"cannot listen on {host!r} port {port}: {_why_not(exc, port)} {named}"
        ) from exc


def _why_not(exc: OSError, port: int) -> str:
    """What a failed bind means, in words a person can act on."""
    if exc.errno == errno.EADDRINUSE:
        return "another program is using the port: stop it, or serve on another port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "the address is not one of this machine's: use 127.0.0.1, or 0.0.0.0 for all"
    if exc.errno == errno.EACCES and port < 1024:
        return f"ports under 1024 need privileges: use a port from 1024 up, such as {port + 8000}"
    return exc.strerror or str(exc)


def open_without_key(settings: Settings) -> str | None:
    """Why the server must not start, when it would listen on every interface with no key."""
    if not listens_everywhere(settings.host) or settings.api_key is not None or settings.allow_open:
        return None
    return (
        f"refusing to listen on {settings.host or 'every interface'!r} without an API key: "
        "anyone who can reach the port could use and manage the server. Set VOICEID_API_KEY, "
        "or VOICEID_ALLOW_OPEN=1 to serve openly all the same"
    )
