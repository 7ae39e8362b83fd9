"""``POST /predict`` answered before FastAPI: the same answer, without its layers.

FastAPI's routing, its own middleware and exception layers cost CPU on the scale of the clip's
own work (``python -m bench.serve``), and so does each ASGI layer of the app's own middleware
(a call, a closure and a wrapped ``send`` or ``receive`` apiece). So the app's outermost layer
takes a plain ``POST /predict``, without a query string and with a body
:func:`service.uploads.read_clip` takes, and:

- when its headers pass every check the app's middleware makes before a body is read (the Host
  check and the API key: :meth:`service.auth.AuthMiddleware.http_refusal`; a declared length
  within the body limit, and no content coding: :class:`service.limits.BodyLimitMiddleware`),
  answers it in one call, :class:`PredictLane`: it reads the body as that middleware does
  (counted against the limit, given up on when it stalls), runs the route's own code
  (:func:`service.routes.predict.prediction`), answers errors as the app does
  (:func:`service.errors.error_response`) and counts the request as
  :class:`service.metrics.MetricsMiddleware` does; these checks are made by the middleware
  objects of the app's own stack, with their settings;
- otherwise (a refusal, a body without a declared length) sends it down that middleware itself,
  around the same route code, so that every refusal is the app's own.

Both run inside the app's server-error handler (a bug's 500 is the one every route gives).
Anything else (``explain=``, another content type or method) goes to FastAPI, which also keeps
the route in the OpenAPI schema.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import TypeVar

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.errors import VoiceIdError
from service.auth import AuthMiddleware
from service.errors import UploadTooLargeError, error_response
from service.limits import (
    BodyLimitMiddleware,
    body_headers,
    drain,
    receive_body,
    too_large_message,
)
from service.metrics import MetricsMiddleware
from service.routes.predict import answer, prediction
from service.schemas import json_bytes
from service.uploads import takes_clip

__all__ = ["PREDICT_PATH", "PredictEndpoint", "PredictFastPath", "PredictLane",
           "install_fast_path"]  # fmt: skip

PREDICT_PATH = "/predict"
JSON_TYPE = (b"content-type", b"application/json")
T = TypeVar("T")


class PredictEndpoint:
    """Answers a ``POST /predict`` with the route's code. ``route`` is the FastAPI route it
    answers for, which the metrics label requests with."""

    def __init__(self, route: BaseRoute) -> None:
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route
        try:
            response = await answer(Request(scope, receive))
        except (VoiceIdError, ClientDisconnect) as exc:
            response = error_response(exc)
        await response(scope, receive, send)


class PredictLane:
    """Answers a ``POST /predict`` whose headers :meth:`clears` in one call, as ``checked``
    (the app's middleware around :class:`PredictEndpoint`) would: the middleware objects are
    ``checked``'s own."""

    def __init__(self, state: State, route: BaseRoute, checked: ASGIApp) -> None:
        self.state = state
        self.route = route
        self.route_path: str = getattr(route, "path", PREDICT_PATH)
        self.auth = _layer(checked, AuthMiddleware)
        self.metrics = _layer(checked, MetricsMiddleware)
        self.limit = _layer(checked, BodyLimitMiddleware).limit_for(PREDICT_PATH)

    def clears(self, scope: Scope) -> bool:
        """Whether the middleware would pass this request on, from its headers: it declares a
        body length within the limit, uncompressed, and neither its Host nor its key is
        refused."""
        declared, coding = body_headers(scope)
        return (
            declared is not None
            and declared <= self.limit
            and coding is None
            and self.auth.http_refusal(scope) is None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what a bug is counted as
        scope["route"] = self.route
        try:
            status = await self._answer(scope, receive, send)
        finally:
            self.metrics.record(self.route_path, "POST", status, time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Send the answer; its status."""
        try:
            result = await prediction(self.state, _content_type(scope),
                                      partial(self._body, receive))  # fmt: skip
        except (VoiceIdError, ClientDisconnect) as exc:
            response = error_response(exc)
            await response(scope, receive, send)
            return response.status_code
        body = json_bytes(result)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body)), JSON_TYPE]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
        return 200

    async def _body(self, receive: Receive) -> bytes:
        """The whole body, read as :class:`BodyLimitMiddleware` and Starlette's ``Request``
        read it: counted against the limit, given up on when it stalls, a client gone raising
        :class:`ClientDisconnect`."""
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive_body(receive, received)
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            if message["type"] != "http.request":
                continue
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:  # a body longer than it said
                await drain(receive)
                raise UploadTooLargeError(too_large_message(received, self.limit, declared=False))
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)  # one chunk: that very object, uncopied


class PredictFastPath:
    """Sends plain ``POST /predict`` requests to ``lane`` when it clears them, the others to
    ``checked``; every other request to ``app``. ``lane`` and ``checked`` are guarded by the
    app's server-error handler (``guarded_lane``)."""

    def __init__(
        self, app: ASGIApp, checked: ASGIApp, lane: PredictLane, guarded_lane: ASGIApp
    ) -> None:
        self.app = app
        self.checked = checked
        self.lane = lane
        self.guarded_lane = guarded_lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _takes(scope):
            await self.app(scope, receive, send)
        elif self.lane.clears(scope):
            await self.guarded_lane(scope, receive, send)
        else:
            await self.checked(scope, receive, send)


def install_fast_path(app: FastAPI, route: BaseRoute) -> None:
    """Make :class:`PredictFastPath` ``app``'s outermost layer once its stack is built (at its
    first call, when every middleware and handler is in place)."""
    build = app.build_middleware_stack

    def build_with_fast_path() -> ASGIApp:
        checked = _middleware(app, PredictEndpoint(route))
        lane = PredictLane(app.state, route, checked)
        return PredictFastPath(build(), _guarded(app, checked), lane, _guarded(app, lane))

    # FastAPI has no hook for a layer outside its own; FastAPIOffline makes an instance, not a
    # class to derive from. So this one instance builds its stack this way.
    app.build_middleware_stack = build_with_fast_path  # type: ignore[method-assign]


def _middleware(app: FastAPI, inner: ASGIApp) -> ASGIApp:
    """``inner`` inside ``app``'s middleware, in the same order."""
    for cls, args, kwargs in reversed(app.user_middleware):
        inner = cls(inner, *args, **kwargs)
    return inner


def _guarded(app: FastAPI, inner: ASGIApp) -> ASGIApp:
    """``inner`` inside ``app``'s server-error handler."""
    handler = next((h for key, h in app.exception_handlers.items() if key in (500, Exception)),
                   None)  # fmt: skip
    return ServerErrorMiddleware(inner, handler=handler, debug=app.debug)


def _layers(stack: ASGIApp) -> Iterator[object]:
    layer: object = stack
    while layer is not None:
        yield layer
        layer = getattr(layer, "app", None)


def _layer(stack: ASGIApp, cls: type[T]) -> T:
    """The layer of ``stack`` that is a ``cls``."""
    return next(layer for layer in _layers(stack) if isinstance(layer, cls))


def _content_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1")
    return ""


def _takes(scope: Scope) -> bool:
    if (
        scope["type"] != "http"
        or scope["path"] != PREDICT_PATH
        or scope["method"] != "POST"
        or scope["query_string"]
    ):
        return False
    return takes_clip(_content_type(scope))
