"""The service's one typed settings object, read from ``VOICEID_*`` environment variables."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.audio import DEFAULT_MAX_SECONDS, MAX_SECONDS_LIMIT
from pipeline.errors import ParameterError
from pipeline.speakers import StoreLimits
from pipeline.timeline.recording import DEFAULT_MAX_TIMELINE_S
from service.cpus import cgroup_memory_limit, usable_cpus
from service.sites import check_allowed_host

__all__ = [
    "MAX_WORKERS",
    "SERVE_OPTIONS",
    "Settings",
    "default_data_dir",
    "settings_from_env",
    "unknown_variables",
]

MAX_WORKERS = 64  # server processes, given or found: each holds its own model and heap
# What `auto` counts on each worker and on the process that starts them (python -m
# bench.footprint measures both), so that the workers it starts fit a memory limit.
WORKER_MEMORY_BYTES = 100_000_000
PARENT_MEMORY_BYTES = 70_000_000
# The most a duration setting may be, seconds (a day): more is a slip of the keyboard, and the
# sample counts and deadlines computed from it must stay finite.
MAX_SETTING_S = 86_400.0
MAX_SETTING_RATE = 1000.0  # the most a per-second rate or a speed ratio setting may be
_STORE_DEFAULTS = StoreLimits()
# uvicorn's log levels; any other name would stop it with a KeyError as it starts.
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/voiceid/speakers``, else ``~/.local/share/voiceid/speakers``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "voiceid" / "speakers"


class Settings(BaseSettings):
    """Configuration of ``voiceid serve``; every field can be set as ``VOICEID_<NAME>``."""

    # No float setting may be infinite or NaN: each is a limit, and "inf" would lift it only to
    # overflow where it is used.
    model_config = SettingsConfigDict(
        env_prefix="VOICEID_", env_file=None, extra="ignore", allow_inf_nan=False
    )

    model_dir: Path = Field(default=Path("models/default"), description="bundle folder to serve")
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port to listen on")
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | Literal["auto"] = Field(
        default="auto",
        description="server processes: a number, or auto (the CPUs this process may use, as "
        "many as its memory limit holds)",
    )
    max_upload_bytes: int = Field(default=10_000_000, ge=1024, description="largest /predict body")
    max_clip_seconds: float = Field(
        default=DEFAULT_MAX_SECONDS,
        gt=0,
        le=MAX_SECONDS_LIMIT,
        description="longest clip accepted, in seconds",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="required on /predict*, /model*, /admin/*, /speakers*, /train* and "
        "/metrics when set; without it, writes are taken only on loopback",
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="more names the server answers to besides its host and loopback (a "
        "proxy's, a DNS name), comma-separated; '*.example.org' allows its subdomains",
    )
    metrics_public: bool = Field(default=False, description="serve /metrics without the key")
    allow_open: bool = Field(
        default=False, description="listen on all interfaces without an API key all the same"
    )
    models_root: Path | None = Field(
        default=None,
        description="/admin/reload loads bundles inside this folder only "
        "(default: the folder holding model_dir)",
    )
    active_model_file: Path | None = Field(
        default=None,
        description="file naming the bundle all workers serve; `voiceid serve` sets one",
    )
    clip_budget_s: float = Field(
        default=5.0,
        gt=0,
        le=MAX_SETTING_S,
        description="longest a clip may wait for compute before a 503",
    )
    unknown_threshold: float | None = Field(
        None, ge=0, le=1, description="overrides the bundle's unknown-speaker threshold"
    )
    batch_max_files: int = Field(default=32, ge=1, le=1000, description="most files in one batch")
    batch_max_bytes: int = Field(
        default=50_000_000, ge=1024, description="largest /predict/batch body"
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="the speaker store: <data_dir>/<speaker>/<clip> "
        "(default: $XDG_DATA_HOME/voiceid/speakers, else ~/.local/share/voiceid/speakers)",
    )
    max_speakers: int = Field(
        default=_STORE_DEFAULTS.max_speakers, ge=1, description="most speakers in the store"
    )
    max_clips_per_speaker: int = Field(
        default=_STORE_DEFAULTS.max_clips_per_speaker,
        ge=1,
        description="most clips one speaker of the store may have",
    )
    max_store_bytes: int = Field(
        default=_STORE_DEFAULTS.max_store_bytes,
        ge=1,
        description="most bytes of clips the store may hold",
    )
    train_timeout_s: float = Field(
        default=600.0,
        gt=0,
        le=MAX_SETTING_S,
        description="a training job running longer than this is stopped",
    )
    timeline_max_seconds: float = Field(
        default=DEFAULT_MAX_TIMELINE_S,
        gt=0,
        le=MAX_SECONDS_LIMIT,
        description="longest /timeline recording, in seconds",
    )
    timeline_max_bytes: int = Field(
        default=128_000_000,
        ge=1024,
        description="largest /timeline body (10 minutes of 48 kHz stereo 16-bit WAV is 115 MB)",
    )
    listen_max_streams: int = Field(
        default=100, ge=1, description="most /listen streams one worker serves at once"
    )
    listen_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=MAX_SETTING_S,
        description="longest /listen stream, in seconds of audio or of time",
    )
    listen_idle_s: float = Field(
        default=10.0,
        gt=0,
        le=MAX_SETTING_S,
        description="a /listen stream that sends nothing this long is closed",
    )
    listen_max_frame_bytes: int = Field(
        default=65_536, ge=1024, description="largest /listen message, in bytes"
    )
    listen_max_speed: float = Field(
        default=1.5,
        ge=1,
        le=MAX_SETTING_RATE,
        description="/listen audio may arrive at most this many times faster than real time "
        "(after listen_burst_s of audio ahead)",
    )
    listen_burst_s: float = Field(
        default=2.0,
        ge=0,
        le=MAX_SETTING_S,
        description="seconds of audio a /listen stream may send ahead (one frame of "
        "listen_max_frame_bytes ahead, if that is longer)",
    )
    listen_max_frames_per_s: float = Field(
        default=200.0,
        gt=0,
        le=MAX_SETTING_RATE,
        description="most /listen messages a stream may send per second",
    )
    log_level: LogLevel = Field(
        default="info",
        description="what the server logs: critical, error, warning, info, debug or trace",
    )

    @field_validator("api_key")
    @classmethod
    def _key_can_be_sent(cls, key: SecretStr | None) -> SecretStr | None:
        """An empty key would lock every protected route; one with spaces around it cannot be
        sent (HTTP drops them from a header's value), nor one beyond printable ASCII (a header
        arrives as Latin-1 bytes, so a UTF-8 'é' never matches)."""
        if key is None:
            return None
        value = key.get_secret_value()
        if not value.strip():
            raise ValueError(
                "VOICEID_API_KEY is empty: set a key, or unset the variable to serve without one"
            )
        if value != value.strip():
            raise ValueError(
                "VOICEID_API_KEY starts or ends with whitespace, which no X-API-Key header can "
                "carry: remove it"
            )
        if not all(" " <= c <= "~" for c in value):  # the character itself is not shown
            raise ValueError(
                "VOICEID_API_KEY holds a character other than printable ASCII (an accented "
                "letter, a control character), which no X-API-Key header carries as typed: use "
                "ASCII letters, digits and punctuation"
            )
        return key

    @field_validator("model_dir", "data_dir", "models_root", mode="before")
    @classmethod
    def _folder_named(cls, value: object, info: ValidationInfo) -> object:
        """An empty path would be read as the working folder, which nobody means (a compose
        file's ``${UNSET}`` gives one) and whose errors would name that folder, not the setting."""
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                f"{cls.env_name(str(info.field_name))} is empty: name a folder, or unset the "
                "variable for the default"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        """``INFO`` as well as ``info``, as logging's own names are written."""
        return value.lower() if isinstance(value, str) else value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        """``a.example,b.example`` (the environment's form) or a sequence of names."""
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list | tuple):
            return value  # pydantic says what is wrong with it
        return tuple(check_allowed_host(str(n)) for n in names if str(n).strip())

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets ``field``: ``VOICEID_<FIELD>``."""
        return f"{cls.model_config['env_prefix']}{field.upper()}"

    def worker_count(self) -> int:
        """``workers``, with ``auto`` resolved to the CPUs this process may use (its affinity
        mask and cgroup quota: ``service.cpus``), no more than its cgroup's memory limit holds
        (a worker killed for memory is started again, and killed again), at most
        ``MAX_WORKERS``."""
        if self.workers != "auto":
            return self.workers
        memory = cgroup_memory_limit()
        held = (
            MAX_WORKERS if memory is None else (memory - PARENT_MEMORY_BYTES) // WORKER_MEMORY_BYTES
        )
        return max(1, min(usable_cpus(), held, MAX_WORKERS))

    def store_limits(self) -> StoreLimits:
        """The speaker store's limits, from the fields of the same names."""
        return StoreLimits(
            max_speakers=self.max_speakers,
            max_clips_per_speaker=self.max_clips_per_speaker,
            max_store_bytes=self.max_store_bytes,
        )


# The settings ``voiceid serve`` also takes from its command line, and the option for each.
SERVE_OPTIONS = {"model_dir": "--model", "host": "--host", "port": "--port",
                 "workers": "--workers", "data_dir": "--data-dir"}  # fmt: skip


def settings_from_env(options: Mapping[str, str] | None = None) -> Settings:
    """``Settings()`` from the ``VOICEID_*`` environment; :class:`ParameterError` naming each
    setting that is wrong, and why (never the key's value). A setting in ``options`` (setting ->
    command line option) came from that option, and is named by it."""
    try:
        return Settings()
    except ValidationError as exc:
        by_field: dict[str, list[Any]] = {}  # a union's members each add an error
        for error in exc.errors():
            by_field.setdefault(str(error["loc"][0]) if error["loc"] else "", []).append(error)
        problems = (_problem(errors, options or {}) for errors in by_field.values())
        raise ParameterError("; ".join(problems)) from None


def _problem(errors: list[Any], options: Mapping[str, str]) -> str:
    error = errors[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    message = ", or ".join(str(e["msg"]).removeprefix("Value error, ") for e in errors)
    if field in options:
        return f"{options[field]} {error['input']}: {message}"
    name = Settings.env_name(field)
    if message.startswith(name):
        return message
    shown = "" if field == "api_key" else f"={error['input']!r}"
    return f"{name}{shown}: {message}"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``VOICEID_*`` variable of ``environ`` that sets nothing (names are
    read in any case), naming the setting it is closest to: a misspelt one is ignored, and
    the server would start without what it was meant to set (a model, a limit)."""
    names = [Settings.env_name(field) for field in Settings.model_fields]
    prefix = Settings.model_config["env_prefix"]
    found = sorted(v for v in environ if v.upper().startswith(prefix))
    warnings = []
    for variable in (v for v in found if v.upper() not in names):
        close = difflib.get_close_matches(variable.upper(), names, n=1, cutoff=0.8)
        guess = f": did you mean {close[0]}?" if close else ""
        warnings.append(f"{variable} is no setting, and is ignored{guess}")
    return warnings
