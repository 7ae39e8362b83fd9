"""Settings refuse values that would make a server that starts but cannot be used, and say why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.errors import ParameterError
from service.settings import Settings, settings_from_env, unknown_variables

EMPTY_KEY = "VOICEID_API_KEY is empty: set a key, or unset the variable to serve without one"


@pytest.mark.parametrize("key", ["", " ", "\t\n"], ids=["empty", "a space", "whitespace"])
def test_an_empty_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(api_key=key)

    assert [e["msg"] for e in error.value.errors()] == [f"Value error, {EMPTY_KEY}"]


def test_a_key_that_no_header_can_carry_is_refused() -> None:
    with pytest.raises(ValidationError, match="starts or ends with whitespace"):
        Settings(api_key=" s3cret")


def test_the_environment_names_the_variable_and_keeps_the_key_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICEID_API_KEY", "s3cret ")
    monkeypatch.setenv("VOICEID_PORT", "0")

    with pytest.raises(ParameterError) as error:
        settings_from_env()

    assert str(error.value) == (
        "VOICEID_PORT='0': Input should be greater than or equal to 1; VOICEID_API_KEY starts "
        "or ends with whitespace, which no X-API-Key header can carry: remove it"
    )


def test_a_setting_from_an_option_is_named_by_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEID_PORT", "99999")
    monkeypatch.setenv("VOICEID_MAX_UPLOAD_BYTES", "1")

    with pytest.raises(ParameterError) as error:
        settings_from_env({"port": "--port"})

    assert str(error.value) == (
        "--port 99999: Input should be less than or equal to 65535; "
        "VOICEID_MAX_UPLOAD_BYTES='1': Input should be greater than or equal to 1024"
    )


def test_what_a_union_accepts_is_one_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEID_WORKERS", "65")

    with pytest.raises(ParameterError) as error:
        settings_from_env()

    assert str(error.value) == (
        "VOICEID_WORKERS='65': Input should be less than or equal to 64, or Input should be 'auto'"
    )


def test_allowed_hosts_come_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEID_ALLOWED_HOSTS", "Voice.example.org, *.lan,,")

    assert settings_from_env().allowed_hosts == ("voice.example.org", "*.lan")


def test_a_bare_star_is_no_allowed_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEID_ALLOWED_HOSTS", "voice.example.org,*")

    with pytest.raises(ParameterError) as error:
        settings_from_env()

    assert str(error.value).startswith(
        "VOICEID_ALLOWED_HOSTS entry '*' would let any name, and so any DNS-rebinding page, "
        "reach the server"
    )


FLOAT_SETTINGS = [name for name, field in Settings.model_fields.items()
                  if field.annotation in (float, float | None)]  # fmt: skip


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
@pytest.mark.parametrize("field", FLOAT_SETTINGS)
def test_no_float_setting_takes_infinity_or_nan(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    assert _refusal(monkeypatch, field, value) == (
        f"{Settings.env_name(field)}={value!r}: Input should be a finite number"
    )


def test_the_float_settings_are_the_limits_and_budgets() -> None:
    assert FLOAT_SETTINGS == [
        "max_clip_seconds", "clip_budget_s", "unknown_threshold", "train_timeout_s",
        "timeline_max_seconds", "listen_max_seconds", "listen_idle_s", "listen_max_speed",
        "listen_burst_s", "listen_max_frames_per_s",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [("max_clip_seconds", "1e308", "86400"), ("timeline_max_seconds", "86401", "86400"),
     ("clip_budget_s", "1e300", "86400"), ("train_timeout_s", "1e300", "86400"),
     ("listen_max_seconds", "1e300", "86400"), ("listen_idle_s", "1e300", "86400"),
     ("listen_burst_s", "1e300", "86400"), ("listen_max_speed", "1e300", "1000"),
     ("listen_max_frames_per_s", "1001", "1000")],
)  # fmt: skip
def test_an_absurdly_large_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str, limit: str
) -> None:
    assert _refusal(monkeypatch, field, value) == (
        f"{Settings.env_name(field)}={value!r}: Input should be less than or equal to {limit}"
    )


def _refusal(monkeypatch: pytest.MonkeyPatch, field: str, value: str) -> str:
    """The message that refuses ``field`` set to ``value`` through its variable."""
    monkeypatch.setenv(Settings.env_name(field), value)
    with pytest.raises(ParameterError) as error:
        settings_from_env()
    return str(error.value)


def test_a_log_level_uvicorn_does_not_know_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _refusal(monkeypatch, "log_level", "verbose") == (
        "VOICEID_LOG_LEVEL='verbose': Input should be 'critical', 'error', 'warning', 'info', "
        "'debug' or 'trace'"
    )


def test_a_log_level_may_be_written_in_capitals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEID_LOG_LEVEL", "WARNING")

    assert settings_from_env().log_level == "warning"


def test_a_misspelt_variable_is_named_with_the_setting_it_may_mean() -> None:
    environ = {"VOICEID_MODELDIR": "/models/mine", "VOICEID_API_KEY": "k", "voiceid_port": "9",
               "VOICEID_TAG": "1.0", "PATH": "/bin", "XVOICEID_MODEL": "x"}  # fmt: skip

    assert unknown_variables(environ) == [
        "VOICEID_MODELDIR is no setting, and is ignored: did you mean VOICEID_MODEL_DIR?",
        "VOICEID_TAG is no setting, and is ignored",
    ]


@pytest.mark.parametrize(
    ("field", "value"), [("model_dir", ""), ("data_dir", " "), ("models_root", "")]
)
def test_an_empty_folder_setting_is_refused_not_read_as_the_working_folder(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    name = Settings.env_name(field)

    assert _refusal(monkeypatch, field, value) == (
        f"{name} is empty: name a folder, or unset the variable for the default"
    )


@pytest.mark.parametrize("key", ["clé-secrète", "s3cret\x07", "naïve\u200bkey"])
def test_a_key_a_header_cannot_carry_as_typed_is_refused_without_showing_it(key: str) -> None:
    """Headers arrive as Latin-1 bytes: a key typed with an accent would never match."""
    with pytest.raises(ValidationError) as error:
        Settings(api_key=key)

    assert [e["msg"] for e in error.value.errors()] == [
        "Value error, VOICEID_API_KEY holds a character other than printable ASCII (an "
        "accented letter, a control character), which no X-API-Key header carries as typed: "
        "use ASCII letters, digits and punctuation"
    ]
