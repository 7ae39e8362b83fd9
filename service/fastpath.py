"""``POST /predict`` answered below FastAPI: the same answer, without its routing.

FastAPI's routing, parameter solving and endpoint wrapper cost about as much CPU per request
as the clip's own work (``python -m bench.serve``). So a plain ``POST /predict``, without a
query string and with a body :func:`service.uploads.read_clip` takes, is answered here, by the
route's own code (:func:`service.routes.predict.answer`) and the app's own error answers
(:func:`service.errors.error_response`). It sits inside the middleware, so the Host check, the
API key, the body limit and the metrics (which it tells the route it stands for) see it as any
other request. Anything else (``explain=``, another content type or method) goes on to FastAPI,
which also keeps the route in the OpenAPI schema.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.errors import VoiceIdError
from service.errors import error_response
from service.routes.predict import answer
from service.uploads import takes_clip

__all__ = ["PREDICT_PATH", "PredictFastPath"]

PREDICT_PATH = "/predict"


class PredictFastPath:
    """Answers plain ``POST /predict`` requests; passes every other request to ``app``.
    ``route`` is the FastAPI route it answers for, which the metrics label requests with."""

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _takes(scope):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            response = await answer(Request(scope, receive))
        except (VoiceIdError, ClientDisconnect) as exc:
            response = error_response(exc)
        await response(scope, receive, send)


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
