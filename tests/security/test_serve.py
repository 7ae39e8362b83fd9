"""voiceid serve will not listen on every interface without a key, unless told to."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from service.main import open_without_key
from service.settings import Settings
from voiceid.cli import main

REFUSAL = (
    "refusing to listen on '0.0.0.0' without an API key: anyone who can reach the port could "
    "use and manage the server. Set VOICEID_API_KEY, or VOICEID_ALLOW_OPEN=1 to serve openly "
    "all the same"
)


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        (Settings(host="0.0.0.0"), True),
        (Settings(host="::"), True),
        (Settings(host="0.0.0.0", api_key=SecretStr("k")), False),
        (Settings(host="0.0.0.0", allow_open=True), False),
        (Settings(host="127.0.0.1"), False),
    ],
    ids=["any v4", "any v6", "with a key", "allowed open", "loopback"],
)
def test_open_hosts_need_a_key_or_a_say_so(settings: Settings, refused: bool) -> None:
    assert (open_without_key(settings) is not None) == refused


def test_the_command_exits_and_says_why() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEID_")}
    done = subprocess.run(
        [sys.executable, "-m", "voiceid", "serve", "--host", "0.0.0.0"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.strip() == REFUSAL


@pytest.mark.parametrize("key", ["", "  "])
def test_an_empty_key_stops_the_command_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """Else every route that needs the key would be locked, and nothing would say why."""

    def served(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr("service.main.uvicorn.run", served)
    monkeypatch.setenv("VOICEID_API_KEY", key)

    code = main(["serve"])

    assert code == 2
    assert capsys.readouterr().err == (
        "voiceid serve: error: VOICEID_API_KEY is empty: set a key, or unset the variable to "
        "serve without one\n"
    )
