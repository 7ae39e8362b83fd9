"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib import metadata
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.routing import BaseRoute

from pipeline.bundle import Bundle
from pipeline.errors import BundleError
from pipeline.speakers import SpeakerStore
from service.auth import AuthMiddleware, write_refusal
from service.compute import ComputeQueue
from service.errors import install_error_handlers
from service.fastpath import PREDICT_PATH, install_fast_path
from service.inference import warm_up
from service.limits import BodyLimitMiddleware
from service.listen import Streams
from service.metrics import Metrics, MetricsMiddleware
from service.model_store import ModelStore
from service.routes import admin, listen, model, ops, predict, speakers, timeline, training
from service.settings import Settings
from service.sites import HostCheck
from service.training import Trainer
from service.versions import Versions

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger("voiceid.service")
STATIC_DIR = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"  # where /docs finds Swagger UI's files
DESCRIPTION = """Who said this clip? POST a recording to `/predict` and get the speaker the
loaded 60-6-N model hears, its scores, or `"unknown"` when the top score is below the
bundle's threshold."""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    trainer: Trainer = app.state.trainer
    refusal = write_refusal(settings, startup=True)
    if refusal is not None:
        log.warning("writes without an API key are refused: %s", refusal)
    names = HostCheck(settings.host, settings.allowed_hosts).described
    log.info("answering requests sent to %s (more: VOICEID_ALLOWED_HOSTS)", names)
    try:
        bundle = await _first_model(app.state.store, trainer.versions, settings.model_dir)
        log.info("serving %s (%s) from %s, labels %s", bundle.name, bundle.version, bundle.path,
                 list(bundle.labels))  # fmt: skip
    except BundleError as exc:
        # Stay up: the store keeps the reason for /ready, and /admin/reload can bring one in.
        log.error("no model loaded: %s", exc)
    trainer.watch()  # a job left by a worker that stopped
    yield
    await trainer.close()
    app.state.compute.close()


async def _first_model(store: ModelStore, versions: Versions, configured: Path) -> Bundle:
    """The version active when the server last ran, if it grew from the configured model and
    still loads; else the configured model. A remembered version is a preference: one that was
    damaged or removed since must not leave the server with no model."""
    remembered = versions.remembered()
    if remembered is not None:
        try:
            return await store.start(remembered)
        except BundleError as exc:
            log.warning("the version active when the server last ran does not load, so the "
                        "configured model serves: %s", exc)  # fmt: skip
    return await store.start(configured)


def create_app(settings: Settings) -> FastAPI:
    """A new app serving ``settings.model_dir``; the model loads at startup, not at import."""
    app = FastAPIOffline(
        title="voiceid",
        version=metadata.version("voiceid"),
        description=DESCRIPTION,
        lifespan=_lifespan,
        # /docs loads its script and styles from the installed package, not a CDN, so it works
        # offline; no validator badge fetched from elsewhere either. No /redoc: ReDoc's page
        # fetches its maker's logo from their site.
        redoc_url=None,
        static_url=DOCS_ASSETS,
        favicon_url="/static/favicon.svg",
        swagger_ui_parameters={"validatorUrl": None},
        # The service counts and times its requests itself (service.metrics); FastAPI's own
        # OpenTelemetry would look for a configured provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.store = ModelStore(settings.active_model_file, partial(warm_up, settings=settings))
    app.state.metrics = metrics = Metrics()
    app.state.compute = ComputeQueue()
    app.state.streams = Streams(settings.listen_max_streams)
    app.state.speakers = SpeakerStore(settings.data_dir, settings.store_limits())
    app.state.trainer = Trainer(
        settings.data_dir, app.state.store,
        Versions(settings.model_dir, settings.data_dir / ".versions"), app.state.speakers,
        settings.train_timeout_s,
    )  # fmt: skip
    install_error_handlers(app)
    for router in (predict.router, model.router, ops.router, admin.router, speakers.router,
                   training.router, timeline.router, listen.router):  # fmt: skip
        app.include_router(router)
    batch = settings.batch_max_bytes
    app.add_middleware(
        BodyLimitMiddleware,
        limits={PREDICT_PATH: settings.max_upload_bytes, "/predict/batch": batch,
                speakers.CLIPS_PATH: batch, "/timeline": settings.timeline_max_bytes},
    )  # fmt: skip
    app.add_middleware(AuthMiddleware, settings=settings)  # before any body is read
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: sees every status
    # Outside all of it: /predict's fast path, which runs these same middleware itself.
    install_fast_path(app, _route_of(predict.router, PREDICT_PATH))
    _mount_page(app)
    return app


def _route_of(router: APIRouter, path: str) -> BaseRoute:
    return next(r for r in router.routes if getattr(r, "path", None) == path)


def _mount_page(app: FastAPI) -> None:
    index = STATIC_DIR / "index.html"

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(index, media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
