"""Who may call what: the API key, and writes without one, checked before the body is read.

When ``VOICEID_API_KEY`` is set, every route but the page, ``/health`` and ``/ready`` needs it:
predictions, timelines and live streams (a WebSocket passes this middleware:
``service.listen.authorise`` checks its key), the model and its pictures (weights and training
details are not public), the speaker store, training, the model versions, the admin routes and
``/metrics`` (unless ``VOICEID_METRICS_PUBLIC=1``). Without a key, the routes that change
something (enrolling and removing speakers, training, activating a version, reloading) are taken
only by a server that listens on loopback, where nobody else can reach them; elsewhere they
answer 403 and say what to set. On loopback, any web page the person visits can reach the server
too, so before all that every request is checked for the name it was sent to (421 otherwise),
and a write without a key for the page that sent it (403 when another site's: ``service.sites``
has the rules); a WebSocket is checked for its Host and its Origin whatever it does.

A request that presents the right key is not checked for its site: a page can add neither
``X-API-Key`` nor ``Authorization`` to a request to another site without a CORS preflight, and
this server grants none, so a keyed request comes from the server's own page or from a client
that holds the key. Its Host is checked all the same.

The checks are ASGI middleware, so a refused body is never parsed: FastAPI reads a route's body
before it runs the route's dependencies.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import NamedTuple

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import UnauthorizedError
from service.limits import drain
from service.settings import Settings
from service.sites import HostCheck, cross_site, request_site

__all__ = [
    "PROTECTED_PREFIXES",
    "WRITE_PREFIXES",
    "AuthMiddleware",
    "check_key",
    "check_presented_key",
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
CROSS_SITE = (
    "changes (enrolling, training, activating, reloading) are taken only from this server's "
    "own page or from clients that are no web page (curl, scripts), and {why}: another site's "
    "page may not change this server. To script it, send no Origin header, or set "
    "VOICEID_API_KEY and send the key in the X-API-Key header"
)
CROSS_SITE_SOCKET = "WebSockets are taken only from this server's own page, and {why}"
WEBSOCKET_REASON_BYTES = 123  # the most a WebSocket close frame's reason may hold


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
    check_presented_key(presented_key(headers), settings, "send it in the X-API-Key header")


def check_presented_key(key: str | None, settings: Settings, how: str) -> None:
    """Raise :class:`UnauthorizedError` unless ``key`` is the configured key (any key, or none,
    when none is set); ``how`` tells a client without one where to send it."""
    if settings.api_key is None:
        return
    if not key:
        raise UnauthorizedError(f"missing API key: {how}")
    if not secrets.compare_digest(key.encode(), settings.api_key.get_secret_value().encode()):
        raise UnauthorizedError("wrong API key")


class AuthMiddleware:
    """Refuse, before the body is read (what was sent is drained, within bounds, so that the
    client can read the answer): 421 to a request, or WebSocket, sent to a name this server does
    not answer to; 403 to a WebSocket from another site's page; 401 to a request for a protected
    path without the key; 403 to a write without a key off loopback or from another site."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.hosts = HostCheck(settings.host, settings.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.http_refusal(scope)
        elif scope["type"] == "websocket":
            refusal = self._websocket_refusal(scope)
        else:
            refusal = None
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await _deny_websocket(refusal, scope, receive, send)
        else:
            await drain(receive)
            await refusal.response()(scope, receive, send)

    def http_refusal(self, scope: Scope) -> _Refusal | None:
        """Why an HTTP request of ``scope`` is refused (from its headers alone), or None."""
        host, origin, fetch_site = request_site(scope)
        if not self.hosts.allows(host):
            return _Refusal(421, self.hosts.refusal(host or b""))
        path = scope["path"]
        if needs_key(path, self.settings):
            try:
                check_key(Headers(scope=scope), self.settings)
            except UnauthorizedError as exc:
                return _Refusal(401, str(exc), {"WWW-Authenticate": "ApiKey"})
            return None  # the key is proof enough: no page of another site can send it
        if not is_write(scope["method"], path):
            return None
        server = scope.get("server")
        refusal = write_refusal(self.settings, str(server[0]) if server else None)
        if refusal is None and (why := cross_site(scope["scheme"], host, origin, fetch_site)):
            refusal = CROSS_SITE.format(why=why)
        return None if refusal is None else _Refusal(403, refusal)

    def _websocket_refusal(self, scope: Scope) -> _Refusal | None:
        host, origin, fetch_site = request_site(scope)
        if not self.hosts.allows(host):
            return _Refusal(421, self.hosts.refusal(host or b""))
        why = cross_site(scope["scheme"], host, origin, fetch_site)
        return None if why is None else _Refusal(403, CROSS_SITE_SOCKET.format(why=why))


class _Refusal(NamedTuple):
    status: int
    detail: str
    headers: dict[str, str] | None = None

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail}, status_code=self.status, headers=self.headers)


async def _deny_websocket(refusal: _Refusal, scope: Scope, receive: Receive, send: Send) -> None:
    """Refuse a WebSocket handshake: with an HTTP answer where the server can send one, else by
    closing it (code 1008, policy violation)."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        await refusal.response()(scope, receive, send)
        return
    reason = refusal.detail.encode()[:WEBSOCKET_REASON_BYTES].decode(errors="ignore")
    await send({"type": "websocket.close", "code": 1008, "reason": reason})
