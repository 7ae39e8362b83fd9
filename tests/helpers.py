"""Where things are, a hand-wired network, and clients of the app, for the tests."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from pipeline.bundle import KERAS_FILE, NETWORK_FILE, load_bundle, sha256_file
from pipeline.network import Network, OutputActivation

__all__ = [
    "LOOPBACK_URL",
    "MODEL_DIR",
    "ROOT",
    "ClientFactory",
    "LoopbackClient",
    "async_client",
    "data_with_a_linked_subfolder",
    "free_port",
    "make_format_1",
    "process_running",
    "read_only",
    "stdin_from",
    "switch_network",
]

ROOT = Path(__file__).resolve().parents[1]  # the repository
MODEL_DIR = ROOT / "models" / "default"  # the shipped bundle

# Test clients call the app as a server on loopback: ASGI test transports give the URL's host as
# the connection's local address, and writes without a key are taken only on loopback.
LOOPBACK_URL = "http://127.0.0.1"


@contextmanager
def stdin_from(path: Path) -> Iterator[None]:
    """This process's file descriptor 0 reading ``path``, as a shell's ``< path`` gives it, so
    that a command reading ``/dev/stdin`` in-process reads the file."""
    saved = os.dup(0)
    try:
        with path.open("rb") as f:
            os.dup2(f.fileno(), 0)
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and is no zombie left for its parent to reap."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopbackClient(TestClient):
    """A test client whose WebSockets, too, go to its base URL's host: Starlette's send
    ``Host: testserver`` whatever the base URL, a name the server refuses (421)."""

    def websocket_connect(self, url: str, *args: Any, **kwargs: Any) -> WebSocketTestSession:
        host = self.base_url.netloc.decode()
        return super().websocket_connect(urljoin(f"ws://{host}", url), *args, **kwargs)


def data_with_a_linked_subfolder(demo_data: Path, tmp_path: Path) -> Path:
    """A copy of ``demo_data`` at ``tmp_path/data`` whose ``David/more`` is a link to a folder
    outside it, ``tmp_path/more``, holding two of David's takes."""
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    (tmp_path / "more").mkdir()
    for name in ("hello_010.wav", "hello_011.wav"):
        (data / "David" / name).rename(tmp_path / "more" / name)
    (data / "David" / "more").symlink_to(tmp_path / "more")
    return data


ClientFactory = Callable[..., TestClient]  # the make_client fixture: settings in, started client


def switch_network(output: OutputActivation = "softmax") -> Network:
    """A 2-2-2 network that answers class 0 when x[0] > 1 and class 1 when x[0] < 1.

    Inputs are standardised with mean (1, 0) and scale (0.5, 1), so x[0] = 2 becomes +2; the
    hidden units are then about (1, 0) and the scores about (1, 0); x[0] = 0 gives the mirror.
    """
    return Network(
        hidden_kernel=np.array([[10.0, -10.0], [0.0, 0.0]]),
        hidden_bias=np.zeros(2),
        output_kernel=np.array([[10.0, -10.0], [-10.0, 10.0]]),
        output_bias=np.zeros(2),
        output_activation=output,
        mean=np.array([1.0, 0.0]),
        scale=np.array([0.5, 1.0]),
    )


@asynccontextmanager
async def async_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in-process, its lifespan running; request bodies stream."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=LOOPBACK_URL) as client,
    ):
        yield client


def make_format_1(bundle: Path) -> Path:
    """Turn a current bundle into the format-1 layout: no network.npz and no open set; the
    normalisation and the checksum of model.keras in metadata.json."""
    network = load_bundle(bundle).network
    meta_path = bundle / "metadata.json"
    meta = json.loads(meta_path.read_text())
    for key in ("network_sha256", "openset_sha256", "open_set"):
        del meta[key]
    meta |= {
        "format_version": 1,
        "normalisation": {"mean": network.mean.tolist(), "scale": network.scale.tolist()},
        "model_sha256": sha256_file(bundle / KERAS_FILE),
    }
    meta_path.write_text(json.dumps(meta))
    (bundle / NETWORK_FILE).unlink()
    (bundle / "openset.npz").unlink()
    return bundle


_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def read_only(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Make everything under ``root`` refuse changes as a file system mounted read-only does
    (``EROFS``), through the ``os`` calls that Python's file functions make; reading works."""
    below = str(root)

    def refused(path: Any) -> bool:
        return isinstance(path, str | os.PathLike) and os.fspath(path).startswith(below)

    def fail(path: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITES and refused(path):
            fail(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    for name in ("mkdir", "rmdir", "unlink", "remove", "rename", "replace", "link"):
        real = getattr(os, name)

        def call(path: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if refused(path) or any(refused(a) for a in args[:1]):
                fail(path)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, call)
