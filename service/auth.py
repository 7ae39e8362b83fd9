"""Who may call what: the API key, and writes without one, checked before the body is read.

When ``VOICEID_API_KEY`` is set, every route but the page, ``/health`` and ``/ready`` needs it:
predictions, timelines and live streams (a WebSocket passes this middleware:
``service.listen.authorise`` checks its key), the model and its pictures (weights and training
details are not public), the speaker store, training, the model versions, the admin routes and
``/metrics`` (unless ``VOICEID_METRICS_PUBLIC=1``). Without a key, the routes that change
something (enrolling and removing speakers, training, activating a version, reloading) are taken
only by a server that listens on loopback, where nobody else can reach them; elsewhere they
answer 403 and say what to set. The checks are ASGI middleware, so a refused body is never
parsed: FastAPI reads a route's body before it runs the route's dependencies.
"""

from __future__ import annotations

import ipaddress
import secrets

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import UnauthorizedError
from service.limits import drain
from service.settings import Settings

__all__ = [
    "PROTECTED_PREFIXES",
    "WRITE_PREFIXES",
    "AuthMiddleware",
    "check_key",
    "checkpresented_key",
    "is_loopback",
    "is_write",
    "needs_key",
    "presented_key",
    "write_refusal",
]

# A prefix covers itself and what lies below it: /model and /model/plots, never /models.
# And /metrics unless it is made public.
PROTECTED_PREFIXES = ("/predict", "/timeline", "/listen", "/model", "/models", "/admin",
                      "/speakers", "/train")  # fmt: skip
WRITE_PREFIXES = ("/speakers", "/train", "/models", "/admin")  # with any method but a read
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def needs_key(path: str, settings: Settings) -> bool:
    """Whether ``path`` needs the API key under ``settings`` (never when no key is set)."""
    if settings.api_key is None:
        return False
    if path == "/metrics":
        return not settings.metrics_public
    return _under(path, PROTECTED_PREFIXES)


def is_write(method: str, path: str) -> bool:
    """Whether a ``method`` request to ``path`` changes the server's speakers or models."""
    return method.upper() not in READ_METHODS and _under(path, WRITE_PREFIXES)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, or ``localhost``) is this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _why_not_loopback(settings: Settings, local: str | None) -> str | None:
    if not is_loopback(settings.host):
        return f"it listens on {settings.host or 'every interface'!r}"
    if local is None or not is_loopback(local):
        return f"this connection came in on {local or 'an unknown address'!r}"
    return None


def write_refusal(
    settings: Settings, local: str | None = None, *, startup: bool = False
) -> str | None:
    """Why a write without a key is refused, or None when it is allowed: with a key (checked
    on its own), or on loopback. ``local`` is the address the connection came in on; at
    ``startup`` only the configured host is judged."""
    if settings.api_key is not None:
        return None
    why = _why_not_loopback(settings, settings.host if startup else local)
    if why is None:
        return None
    return (
        f"changes (enrolling, training, activating, reloading) need an API key on a server "
        f"that is not on loopback, and {why}: set VOICEID_API_KEY and send it in the "
        "X-API-Key header, or serve on 127.0.0.1"
    )


def presented_key(headers: Headers) -> str | None:
    """The key in ``X-API-Key``, else in ``Authorization: Bearer``; None when neither."""
    key = headers.get("x-api-key")
    if key is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    return key


def check_key(headers: Headers, settings: Settings) -> None:
    """Raise :class:`UnauthorizedError` unless ``headers`` carry the configured key."""
    checkpresented_key(presented_key(headers), settings, "send it in the X-API-Key header")


def checkpresented_key(key: str | None, settings: Settings, how: str) -> None:
    """Raise :class:`UnauthorizedError` unless ``key`` is the configured key (any key, or none,
    when none is set); ``how`` tells a client without one where to send it."""
    if settings.api_key is None:
        return
    if not key:
        raise UnauthorizedError(f"missing API key: {how}")
    if not secrets.compare_digest(key.encode(), settings.api_key.get_secret_value().encode()):
        raise UnauthorizedError("wrong API key")


class AuthMiddleware:
    """Answer 401 to a request for a protected path without the key, and 403 to a write
    without a key off loopback, before its body is read (what was sent is drained, within
    bounds, so that the client can read the answer)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        response = None
        if needs_key(path, self.settings):
            try:
                check_key(Headers(scope=scope), self.settings)
            except UnauthorizedError as exc:
                response = JSONResponse(
                    {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "ApiKey"}
                )
        elif is_write(scope.get("method", ""), path):
            server = scope.get("server")
            refusal = write_refusal(self.settings, str(server[0]) if server else None)
            if refusal is not None:
                response = JSONResponse({"detail": refusal}, status_code=403)
        if response is None:
            await self.app(scope, receive, send)
            return
        await drain(receive)
        await response(scope, receive, send)
