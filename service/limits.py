"""Body limits on every route, enforced while the body streams in, and a lingering close.

Each path has a byte limit (uploads their own, every other route a small one), so no request
can make the server hold more than that. A refused body is read and thrown away, up to a bound
in bytes and time, before the answer goes out, as nginx's lingering close does: a client that
sends its whole body before reading (Python's urllib) would otherwise see a broken pipe instead
of the 413 or 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import RequestTimeoutError, UploadTooLargeError

__all__ = [
    "BODY_IDLE_S",
    "DEFAULT_BODY_BYTES",
    "LINGER_BYTES",
    "LINGER_S",
    "BodyLimitMiddleware",
    "body_headers",
    "drain",
    "header_refusal",
    "receive_body",
    "too_large_message",
]

DEFAULT_BODY_BYTES = 64 * 1024  # the body limit of every route without its own
LINGER_BYTES = 64 * 1024 * 1024  # at most this much of a refused body is read and discarded
LINGER_S = 0.5  # for at most this long
BODY_IDLE_S = 10.0  # a body that sends nothing for this long is given up on (slow clients)


def too_large_message(size: int, limit: int, *, declared: bool) -> str:
    if declared:
        return f"upload of {size} bytes is over the limit of {limit} bytes"
    return f"upload is over the limit of {limit} bytes (stopped reading at {size} bytes)"


async def drain(receive: Receive) -> None:
    """Read and discard the rest of a request body, up to ``LINGER_BYTES`` and ``LINGER_S``."""
    deadline, read = time.monotonic() + LINGER_S, 0
    while read < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(receive(), left)
        except TimeoutError:  # a client that sends no more is not waited for
            return
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def receive_body(receive: Receive, received: int) -> Message:
    """The next message of a request body of which ``received`` bytes came so far;
    :class:`RequestTimeoutError` when nothing comes for ``BODY_IDLE_S`` (slow clients)."""
    try:
        async with asyncio.timeout(BODY_IDLE_S):  # wait_for would start a task per call
            return await receive()
    except TimeoutError:
        raise RequestTimeoutError(
            f"the request body stalled: nothing arrived for {BODY_IDLE_S:g} s "
            f"after {received} bytes"
        ) from None


class BodyLimitMiddleware:
    """Refuse a request as soon as its body passes its path's byte limit, and one whose body
    is compressed.

    ``limits`` maps a path to its byte limit; a path may hold parameters as routes write them
    (``/speakers/{name:path}/clips``). Other paths get ``default``. A ``Content-Length``
    over the limit is answered 413 before any body is read; a chunked or understated body is
    counted as it arrives, and the error surfaces where the route reads the body (the app's
    handler turns it into a 413). Either way the rest of the body is drained before answering.
    A ``Content-Encoding`` other than ``identity`` is answered 415 before any body is read: no
    route decodes one, and read as it is, it would be refused as not audio, or not JSON.
    """

    def __init__(
        self, app: ASGIApp, limits: Mapping[str, int], default: int = DEFAULT_BODY_BYTES
    ) -> None:
        self.app = app
        self.exact = {path: limit for path, limit in limits.items() if "{" not in path}
        self.patterns = [(compile_path(path)[0], limit) for path, limit in limits.items()
                         if "{" in path]  # fmt: skip
        self.default = default

    def limit_for(self, path: str) -> int:
        """The byte limit of a request to ``path``."""
        if path in self.exact:
            return self.exact[path]
        for pattern, limit in self.patterns:
            if pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        refusal = header_refusal(scope, limit)
        if refusal is not None:
            await drain(receive)
            await refusal(scope, receive, send)
            return
        received, over = 0, False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive_body(receive, received)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise UploadTooLargeError(too_large_message(received, limit, declared=False))
            return message

        async def lingering_send(message: Message) -> None:
            if message["type"] == "http.response.start" and over:
                await drain(receive)
            await send(message)

        await self.app(scope, counting_receive, lingering_send)


def header_refusal(scope: Scope, limit: int) -> JSONResponse | None:
    """The answer to a request its headers refuse: a declared length over ``limit``, or a
    compressed body (RFC 9110's 415, saying which coding is taken)."""
    declared, coding = body_headers(scope)
    if declared is not None and declared > limit:
        message = too_large_message(declared, limit, declared=True)
        return JSONResponse({"detail": message}, status_code=413)
    if coding is not None:
        message = f"Content-Encoding {coding!r} is not supported: send the body uncompressed"
        return JSONResponse({"detail": message}, status_code=415,
                            headers={"accept-encoding": "identity"})  # fmt: skip
    return None


def body_headers(scope: Scope) -> tuple[int | None, str | None]:
    """The request's declared body length (None when it declares none, or none that reads) and
    its ``Content-Encoding`` as sent (None when it has none but ``identity``), from one pass
    over its headers."""
    declared: int | None = None
    coding: str | None = None
    length_seen = False
    for name, value in scope.get("headers", []):
        if name == b"content-length" and not length_seen:
            length_seen = True
            with contextlib.suppress(ValueError):
                declared = int(value)
        elif (
            name == b"content-encoding"
            and coding is None
            and value.strip().lower() not in (b"", b"identity")
        ):
            coding = value.decode("latin-1").strip()
    return declared, coding
