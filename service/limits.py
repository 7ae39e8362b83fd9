"""Upload size limits enforced while the body streams in, before it is all read."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import UploadTooLargeError

__all__ = ["BodyLimitMiddleware", "too_large_message"]


def too_large_message(size: int, limit: int, *, declared: bool) -> str:
    if declared:
        return f"upload of {size} bytes is over the limit of {limit} bytes"
    return f"upload is over the limit of {limit} bytes (stopped reading at {size} bytes)"


class BodyLimitMiddleware:
    """Refuse a request to a limited path as soon as its body passes the path's byte limit.

    ``limits`` maps a path to its byte limit. A ``Content-Length`` over the limit is refused
    before any body is read; a chunked or understated body is counted as it arrives. The error
    surfaces where the route reads the body, and the app's handler turns it into a 413.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, int]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise UploadTooLargeError(too_large_message(declared, limit, declared=True))
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise UploadTooLargeError(too_large_message(received, limit, declared=False))
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
