"""The service's errors and their one mapping to HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from pipeline.errors import (
    BundleError,
    ClipTooLongError,
    DecodeError,
    InvalidAudioError,
    InvalidNameError,
    NameTakenError,
    NotInStoreError,
    StoreFullError,
    StoreLimitError,
    StoreReadOnlyError,
    VoiceIdError,
)
from service.settings import Settings

__all__ = [
    "RETRY_AFTER_S",
    "ConflictError",
    "ForbiddenError",
    "MalformedBodyError",
    "MissingFieldError",
    "ModelNotSwitchedError",
    "NotFoundError",
    "NotReadyError",
    "OverloadedError",
    "RequestTimeoutError",
    "ServiceError",
    "TrainingBusyError",
    "TrainingUnavailableError",
    "UnauthorizedError",
    "UnprocessableError",
    "UnsupportedMediaError",
    "UploadTooLargeError",
    "detail_for",
    "error_response",
    "install_error_handlers",
    "status_for",
]


class ServiceError(VoiceIdError):
    """An error of the HTTP layer itself."""


class UploadTooLargeError(ServiceError):
    pass


class UnsupportedMediaError(ServiceError):
    pass


class UnauthorizedError(ServiceError):
    pass


class NotReadyError(ServiceError):
    pass


class MissingFieldError(ServiceError):
    pass


class MalformedBodyError(ServiceError):
    """A request body that is not what its content type says (400)."""


class NotFoundError(ServiceError):
    pass


class RequestTimeoutError(ServiceError):
    """The client stopped sending its request body (408)."""


class OverloadedError(ServiceError):
    """Compute did not finish within the per-clip budget: try again shortly (503)."""


class ForbiddenError(ServiceError):
    """A request for something the server will not touch, such as a path outside its root."""


class TrainingBusyError(ServiceError):
    """A training job is running already (409)."""


class TrainingUnavailableError(ServiceError):
    """This installation cannot train: the ``train`` extra is missing (503)."""


class StoreUnavailableError(ServiceError):
    """The speaker store's folder is no longer one: the server's files changed under it (503)."""


class ModelNotSwitchedError(ServiceError):
    """A reload or activation that this server's workers could not all follow, so none made
    it: the file they share cannot be written (503)."""


class UnprocessableError(ServiceError):
    """A well-formed request the server cannot act on as things are (422)."""


class ConflictError(ServiceError):
    """A request the server's state does not allow now, such as removing a model's speaker."""


RETRY_AFTER_S = 1  # what a 503 for load asks the client to wait


_STATUS: tuple[tuple[type[VoiceIdError], int], ...] = (
    (UploadTooLargeError, 413),
    (UnsupportedMediaError, 415),
    (DecodeError, 415),
    (InvalidAudioError, 422),
    (UnauthorizedError, 401),
    (NotReadyError, 503),
    (OverloadedError, 503),
    (RequestTimeoutError, 408),
    (ForbiddenError, 403),
    (MissingFieldError, 422),
    (MalformedBodyError, 400),
    (NotFoundError, 404),
    (NotInStoreError, 404),
    (InvalidNameError, 422),
    (NameTakenError, 409),
    (StoreFullError, 507),
    (StoreReadOnlyError, 503),
    (BundleError, 409),
    (TrainingBusyError, 409),
    (TrainingUnavailableError, 503),
    (StoreUnavailableError, 503),
    (ModelNotSwitchedError, 503),
    (UnprocessableError, 422),
    (ConflictError, 409),
)


def status_for(exc: VoiceIdError) -> int:
    """The HTTP status for one of our errors (400 for any other input error)."""
    if isinstance(exc, StoreLimitError):  # the store's size is a payload limit, counts are not
        return 413 if exc.limit == "max_store_bytes" else 409
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def detail_for(exc: VoiceIdError) -> str:
    """The ``detail`` of the response to ``exc``: its message, and for a limit of the server
    (or a full disk under the speaker store), the setting that raises it."""
    if isinstance(exc, StoreLimitError | StoreFullError):
        return f"{exc} ({Settings.env_name(exc.limit)})"
    if isinstance(exc, ClipTooLongError):
        return f"{exc}: send a shorter clip, or raise the server's {Settings.env_name(exc.setting)}"
    return str(exc)


def error_response(exc: VoiceIdError | ClientDisconnect) -> Response:
    """The answer to ``exc``, wherever it is raised: in a route, or on /predict's fast path
    (``service.fastpath``), which runs below FastAPI's handlers."""
    if isinstance(exc, ClientDisconnect):
        # The client hung up mid-upload: nobody is left to answer, and it is no server error.
        return Response(status_code=499)
    headers = None
    if isinstance(exc, UnauthorizedError):
        headers = {"WWW-Authenticate": "ApiKey"}
    elif isinstance(exc, OverloadedError):
        headers = {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse({"detail": detail_for(exc)}, status_code=status_for(exc), headers=headers)


async def _handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VoiceIdError | ClientDisconnect)  # registered for these only
    return error_response(exc)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug, never client input (tests/security). The server closes the connection after it,
    # so it says so: a keep-alive client would otherwise send its next request into a closed
    # socket and fail that one too.
    return JSONResponse(
        {"detail": "internal server error"}, status_code=500, headers={"Connection": "close"}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VoiceIdError, _handle)
    app.add_exception_handler(ClientDisconnect, _handle)
    app.add_exception_handler(Exception, _server_error)
