"""The project's exception hierarchy.

Every error a user can cause derives from :class:`VoiceIdError`, so the CLI and the service
map them to messages and status codes in one place. Messages name the offending value.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AudioError",
    "BundleError",
    "ClipTooLongError",
    "DatasetError",
    "DecodeError",
    "InvalidAudioError",
    "InvalidNameError",
    "MissingExtraError",
    "NameTakenError",
    "NotInStoreError",
    "ParameterError",
    "StoreFullError",
    "StoreLimit",
    "StoreLimitError",
    "StoreReadOnlyError",
    "UnreadableClipError",
    "VoiceIdError",
]


class VoiceIdError(Exception):
    """Base class of every error raised on purpose by voiceid."""


class ParameterError(VoiceIdError, ValueError):
    """An option or configuration value is out of range (``hidden=0 must be >= 1``)."""


class AudioError(VoiceIdError):
    """A clip cannot be used: base of decode and validation errors."""


class DecodeError(AudioError):
    """The bytes are not audio in a format we can read (HTTP 415)."""


class InvalidAudioError(AudioError):
    """The clip decoded but is unusable: empty, silent, too short or long, non-finite (HTTP 422)."""


class ClipTooLongError(InvalidAudioError):
    """The clip is longer than the limit in force; each front end names its own setting for it
    (``--max-seconds``, ``VOICEID_MAX_CLIP_SECONDS``); ``setting`` names the service's field of
    that limit (``max_clip_seconds`` for a clip, ``timeline_max_seconds`` for a timeline)."""

    def __init__(self, message: str, *, setting: str = "max_clip_seconds") -> None:
        super().__init__(message)
        self.setting = setting


class UnreadableClipError(AudioError):
    """A clip's file cannot be read (missing, a folder, no permission); ``reason`` is the
    operating system's words for it, which the CLI prints beside the file."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatasetError(VoiceIdError):
    """A training or evaluation folder does not have the expected layout or enough clips."""


class BundleError(VoiceIdError):
    """A model bundle is missing, incomplete, tampered with or of an unknown format version."""


class MissingExtraError(VoiceIdError):
    """A command needs an optional part of voiceid that is not installed (the ``train`` extra)."""


class InvalidNameError(ParameterError):
    """A speaker name breaks the rules of ``pipeline.names.check_speaker_name`` (HTTP 422)."""


class NameTakenError(VoiceIdError):
    """A speaker name reads the same as another speaker's, or names a voice of the model that
    the request did not say it means to add to (HTTP 409)."""


class NotInStoreError(VoiceIdError):
    """The speaker store holds no such speaker or clip (HTTP 404)."""


# The speaker store's limits, named as the fields of ``pipeline.speakers.StoreLimits``.
StoreLimit = Literal["max_speakers", "max_clips_per_speaker", "max_store_bytes"]


class StoreLimitError(VoiceIdError):
    """Adding clips would take the speaker store past one of its limits; ``limit`` says which
    (HTTP 409 for a count, 413 for the store's size)."""

    def __init__(self, message: str, *, limit: StoreLimit) -> None:
        super().__init__(message)
        self.limit: StoreLimit = limit


class StoreFullError(VoiceIdError):
    """The disk holding the speaker store ran out of space: nothing of the call was stored (HTTP
    507). ``limit`` is the store limit that keeps it below the disk's size."""

    limit: StoreLimit = "max_store_bytes"


class StoreReadOnlyError(VoiceIdError):
    """The speaker store's folder refuses changes (mounted read-only, or its permissions
    changed): nothing of the call was changed (HTTP 503)."""
