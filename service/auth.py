"""The API key, checked before anything of the request body is read.

When ``VOICEID_API_KEY`` is set, every route but the page, ``/health`` and ``/ready`` needs it:
predictions, the model and its pictures (weights and training details are not public), the
admin routes and ``/metrics`` (unless ``VOICEID_METRICS_PUBLIC=1``). The check is ASGI
middleware, so an unauthenticated body is never parsed: FastAPI reads a route's body before
it runs the route's dependencies.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import UnauthorizedError
from service.limits import drain
from service.settings import Settings

__all__ = ["PROTECTED_PREFIXES", "AuthMiddleware", "check_key", "needs_key"]

PROTECTED_PREFIXES = ("/predict", "/model", "/admin")  # and /metrics unless it is made public


def needs_key(path: str, settings: Settings) -> bool:
    """Whether ``path`` needs the API key under ``settings`` (never when no key is set)."""
    if settings.api_key is None:
        return False
    if path == "/metrics":
        return not settings.metrics_public
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


def _presented_key(headers: Headers) -> str | None:
    key = headers.get("x-api-key")
    if key is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    return key


def check_key(headers: Headers, settings: Settings) -> None:
    """Raise :class:`UnauthorizedError` unless ``headers`` carry the configured key."""
    if settings.api_key is None:
        return
    key = _presented_key(headers)
    if not key:
        raise UnauthorizedError("missing API key: send it in the X-API-Key header")
    if not secrets.compare_digest(key.encode(), settings.api_key.get_secret_value().encode()):
        raise UnauthorizedError("wrong API key")


class AuthMiddleware:
    """Answer 401 to a request for a protected path without the key, before its body is read
    (what was sent is drained, within bounds, so that the client can read the answer)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and needs_key(scope.get("path", ""), self.settings):
            try:
                check_key(Headers(scope=scope), self.settings)
            except UnauthorizedError as exc:
                await drain(receive)
                response = JSONResponse(
                    {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "ApiKey"}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
