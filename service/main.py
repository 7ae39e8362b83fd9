"""``voiceid serve``: run the app under uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from service.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["app_from_env", "serve"]


# libuv (under uvloop) accepts every pending connection at once, so with several workers on one
# socket, whichever wakes first takes a burst, and the crowded worker's tail latency grows. With
# this set, each worker accepts one connection at a time and yields, so they spread about evenly
# (python -m bench.serve shows the latency). libuv reads it when a worker starts listening, after
# the factory below has run.
BALANCED_ACCEPT = ("UV_TCP_SINGLE_ACCEPT", "1")


def app_from_env() -> FastAPI:
    """The app factory uvicorn's workers call: settings come from ``VOICEID_*``."""
    # Imported here: `voiceid serve`'s parent process only starts the workers, and importing
    # the app there (0.5 s, 60 MB) would delay them and hold memory that nothing uses.
    from service.app import create_app

    os.environ.setdefault(*BALANCED_ACCEPT)
    return create_app(Settings())


def serve(
    *,
    model_dir: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    workers: int | str | None = None,
) -> None:
    """Serve with the command line's values over the ``VOICEID_*`` environment."""
    overrides = {"model_dir": model_dir, "host": host, "port": port, "workers": workers}
    for name, value in overrides.items():
        if value is not None:
            # Through the environment, so that every worker process sees the same settings.
            os.environ[f"VOICEID_{name.upper()}"] = str(value)
    settings = Settings()
    uvicorn.run(
        "service.main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.worker_count(),
        log_level=settings.log_level,
        access_log=False,
    )
