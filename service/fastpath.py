"""``POST /predict`` answered before FastAPI: the same answer, without its layers.

FastAPI's routing, its own middleware and exception layers cost CPU on the scale of the clip's
own work (``python -m bench.serve``). So the app's outermost layer sends a plain
``POST /predict``, without a query string and with a body :func:`service.uploads.read_clip`
takes, down a stack of its own: the app's middleware (the same classes with the same settings,
so the Host check, the API key before the body, the body limit and the metrics hold as for any
request), around the route's own code (:func:`service.routes.predict.answer`) with the app's
own error answers (:func:`service.errors.error_response`), all inside the app's server-error
handler. Anything else (``explain=``, another content type or method) goes to FastAPI, which
also keeps the route in the OpenAPI schema.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.errors import VoiceIdError
from service.errors import error_response
from service.routes.predict import answer
from service.uploads import takes_clip

__all__ = ["PREDICT_PATH", "PredictEndpoint", "PredictFastPath", "install_fast_path"]

PREDICT_PATH = "/predict"


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


class PredictFastPath:
    """Sends plain ``POST /predict`` requests to ``fast``, every other one to ``app``."""

    def __init__(self, app: ASGIApp, fast: ASGIApp) -> None:
        self.app = app
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.fast if _takes(scope) else self.app)(scope, receive, send)


def install_fast_path(app: FastAPI, route: BaseRoute) -> None:
    """Make :class:`PredictFastPath` ``app``'s outermost layer once its stack is built (at its
    first call, when every middleware and handler is in place)."""
    build = app.build_middleware_stack

    def build_with_fast_path() -> ASGIApp:
        return PredictFastPath(build(), _fast_stack(app, route))

    # FastAPI has no hook for a layer outside its own; FastAPIOffline makes an instance, not a
    # class to derive from. So this one instance builds its stack this way.
    app.build_middleware_stack = build_with_fast_path  # type: ignore[method-assign]


def _fast_stack(app: FastAPI, route: BaseRoute) -> ASGIApp:
    """:class:`PredictEndpoint` inside ``app``'s middleware, in the same order, inside its
    server-error handler (a bug's 500 is the one every route gives)."""
    stack: ASGIApp = PredictEndpoint(route)
    for cls, args, kwargs in reversed(app.user_middleware):
        stack = cls(stack, *args, **kwargs)
    handler = next((h for key, h in app.exception_handlers.items() if key in (500, Exception)),
                   None)  # fmt: skip
    return ServerErrorMiddleware(stack, handler=handler, debug=app.debug)


def _takes(scope: Scope) -> bool:
    if (
        scope["type"] != "http"
        or scope["path"] != PREDICT_PATH
        or scope["method"] != "POST"
        or scope["query_string"]
    ):
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            return takes_clip(value.decode("latin-1"))
    return False
