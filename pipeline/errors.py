"""The project's exception hierarchy.

Every error a user can cause derives from :class:`VoiceIdError`, so the CLI and the service
map them to messages and status codes in one place. Messages name the offending value.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "BundleError",
    "DatasetError",
    "DecodeError",
    "InvalidAudioError",
    "MissingExtraError",
    "ParameterError",
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


class DatasetError(VoiceIdError):
    """A training or evaluation folder does not have the expected layout or enough clips."""


class BundleError(VoiceIdError):
    """A model bundle is missing, incomplete, tampered with or of an unknown format version."""


class MissingExtraError(VoiceIdError):
    """A command needs an optional part of voiceid that is not installed (the ``train`` extra)."""
