"""voiceid serve will not listen on every interface without a key, unless told to."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

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


def test_the_command_exits_2_and_says_why_as_its_other_refusals_do() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEID_")}
    done = subprocess.run(
        [sys.executable, "-m", "voiceid", "serve", "--host", "0.0.0.0"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr == f"voiceid serve: error: {REFUSAL}\n"


def _serve_refusal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> tuple[int, str]:
    """The exit status and message of ``voiceid serve ARGV``, which must not start."""

    def served(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr("service.main.uvicorn.run", served)
    # serve writes its options into the environment, for its workers: keep them to this test.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    code = main(["serve", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("key", ["", "  "])
def test_an_empty_key_stops_the_command_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """Else every route that needs the key would be locked, and nothing would say why."""
    monkeypatch.setenv("VOICEID_API_KEY", key)

    code, err = _serve_refusal(monkeypatch, capsys, [])

    assert code == 2
    assert err == (
        "voiceid serve: error: VOICEID_API_KEY is empty: set a key, or unset the variable to "
        "serve without one\n"
    )


STORE_NAMED = "(--data-dir or VOICEID_DATA_DIR names the speaker store)"


def test_a_data_dir_that_is_a_file_stops_the_command_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Else every route of the speaker store would be a 500."""
    (tmp_path / "afile").write_bytes(b"")

    code, err = _serve_refusal(monkeypatch, capsys, ["--data-dir", str(tmp_path / "afile")])

    assert code == 2
    assert err == (
        f"voiceid serve: error: speaker store {str(tmp_path / 'afile')!r} is not a folder "
        f"{STORE_NAMED}\n"
    )


def test_a_data_dir_inside_a_file_stops_the_command_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "afile").write_bytes(b"")
    monkeypatch.setenv("VOICEID_DATA_DIR", str(tmp_path / "afile" / "a" / "store"))

    code, err = _serve_refusal(monkeypatch, capsys, [])

    assert code == 2
    assert err == (
        f"voiceid serve: error: speaker store {str(tmp_path / 'afile' / 'a' / 'store')!r} cannot "
        f"be made: {str(tmp_path / 'afile')!r} is not a folder {STORE_NAMED}\n"
    )


def test_a_data_dir_in_a_folder_it_may_not_write_in_stops_the_command_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Naming the uid, which in a container is not the host's user who owns the folder."""
    (tmp_path / "locked").mkdir(mode=0o500)
    if os.geteuid() == 0:  # root may write in any folder: as a user who may not
        monkeypatch.setattr(os, "access", lambda path, mode: False)
    store = tmp_path / "locked" / "store"

    code, err = _serve_refusal(monkeypatch, capsys, ["--data-dir", str(store)])

    assert code == 2
    assert err == (
        f"voiceid serve: error: speaker store {str(store)!r} cannot be written: this process "
        f"(uid {os.geteuid()}) may not write in {str(tmp_path / 'locked')!r} {STORE_NAMED}\n"
    )


ADDRESS_NAMED = "(--host and --port, or VOICEID_HOST and VOICEID_PORT)"


def test_a_port_another_program_listens_on_stops_the_command_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn said only ``[Errno 98] Address already in use``, after loading the model."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, err = _serve_refusal(monkeypatch, capsys, ["--port", str(port)])

    assert code == 2
    assert err == (
        f"voiceid serve: error: cannot listen on '127.0.0.1' port {port}: another program is "
        f"using the port: stop it, or serve on another port {ADDRESS_NAMED}\n"
    )


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("192.0.2.1", "the address is not one of this machine's: use 127.0.0.1, or 0.0.0.0 "
                      "for all"),
        ("no-such-host.invalid", "'no-such-host.invalid' is not an address, nor a name this "
                                 "machine resolves: use an address such as 127.0.0.1"),
    ],
    ids=["not this machine's", "no such name"],
)  # fmt: skip
def test_a_host_the_server_cannot_listen_on_stops_the_command_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], host: str, why: str
) -> None:
    monkeypatch.setenv("VOICEID_API_KEY", "k")  # not a loopback host: the key refusal comes first

    code, err = _serve_refusal(monkeypatch, capsys, ["--host", host, "--port", "8000"])

    assert code == 2
    assert err == (
        f"voiceid serve: error: cannot listen on {host!r} port 8000: {why} {ADDRESS_NAMED}\n"
    )
