"""``--workers auto``: the CPUs this process may use, from its affinity mask and fake cgroups."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.cpus import cgroup_cpu_limit, cgroup_memory_limit, usable_cpus
from service.settings import MAX_WORKERS, Settings
from tests.helpers import free_port
from voiceid.cli import main

FOUR_CPUS = {0, 1, 2, 3}
MIB = 1 << 20


def fake_cgroups(tmp_path: Path, proc_lines: list[str], files: dict[str, str]) -> dict[str, Any]:
    """A cgroup mount under ``tmp_path`` holding ``files`` (relative path -> content) and a
    /proc/self/cgroup of ``proc_lines``: the keyword arguments of ``usable_cpus``."""
    root = tmp_path / "sys-fs-cgroup"
    root.mkdir()
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("".join(f"{line}\n" for line in proc_lines))
    return {"cgroup_root": root, "proc_cgroup": proc}


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("150000 100000", 2), ("50000 100000", 1), ("100000 100000", 1), ("250000 100000", 3),
     ("800000 100000", 4), ("max 100000", 4)],
)  # fmt: skip
def test_a_cgroup_v2_quota_caps_the_affinity_mask(
    tmp_path: Path, cpu_max: str, expected: int
) -> None:
    # In a container with its own cgroup namespace: "0::/", its cgroup mounted as the root.
    cgroups = fake_cgroups(tmp_path, ["0::/"], {"cpu.max": cpu_max})

    assert usable_cpus(affinity=FOUR_CPUS, **cgroups) == expected


def test_a_container_limited_to_one_and_a_half_cpus_gets_two_workers_not_the_hosts_64(
    tmp_path: Path,
) -> None:
    cgroups = fake_cgroups(tmp_path, ["0::/"], {"cpu.max": "150000 100000"})

    assert usable_cpus(affinity=set(range(64)), **cgroups) == 2


def test_the_tightest_quota_above_the_process_counts(tmp_path: Path) -> None:
    # systemd: a slice limited to 2 CPUs, the service in it to 3, the process's cgroup unlimited.
    files = {"cpu.max": "max 100000",
             "limited.slice/cpu.max": "200000 100000",
             "limited.slice/app.service/cpu.max": "300000 100000",
             "limited.slice/app.service/worker/cpu.max": "max 100000"}  # fmt: skip
    cgroups = fake_cgroups(tmp_path, ["0::/limited.slice/app.service/worker"], files)

    assert cgroup_cpu_limit(**cgroups) == 2.0
    assert usable_cpus(affinity=FOUR_CPUS, **cgroups) == 2


def test_a_cgroup_v1_cfs_quota_caps_the_affinity_mask(tmp_path: Path) -> None:
    # Docker on cgroup v1 without a cgroup namespace: /proc/self/cgroup names the host's path,
    # while the container's own cgroup is mounted at the controller's root.
    lines = ["12:memory:/docker/abc", "4:cpu,cpuacct:/docker/abc", "1:name=systemd:/docker/abc"]
    files = {"cpu,cpuacct/cpu.cfs_quota_us": "150000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}
    cgroups = fake_cgroups(tmp_path, lines, files)

    assert cgroup_cpu_limit(**cgroups) == 1.5
    assert usable_cpus(affinity=FOUR_CPUS, **cgroups) == 2


def test_a_cgroup_v1_quota_of_minus_one_is_no_limit(tmp_path: Path) -> None:
    files = {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}
    cgroups = fake_cgroups(tmp_path, ["3:cpu:/", "0::/"], files)

    assert cgroup_cpu_limit(**cgroups) is None
    assert usable_cpus(affinity=FOUR_CPUS, **cgroups) == 4


def test_the_affinity_mask_alone_without_cgroup_files(tmp_path: Path) -> None:
    missing = {"cgroup_root": tmp_path / "none", "proc_cgroup": tmp_path / "none" / "cgroup"}

    assert usable_cpus(affinity={2, 5}, **missing) == 2
    assert usable_cpus(affinity=set(), **missing) == 1  # never none


@pytest.mark.parametrize("content", ["", "garbage", "0 100000", "150000 0", "1 2 3"])
def test_unreadable_quota_files_mean_no_limit(tmp_path: Path, content: str) -> None:
    cgroups = fake_cgroups(tmp_path, ["0::/"], {"cpu.max": content})

    assert cgroup_cpu_limit(**cgroups) is None


def test_this_process_may_use_at_least_one_and_at_most_its_affinity() -> None:
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


# Settings and `voiceid serve`


def test_workers_default_to_auto_and_resolve_to_the_usable_cpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("service.settings.usable_cpus", lambda: 3)
    monkeypatch.setenv("VOICEID_PORT", str(free_port()))  # serve checks that it may listen

    assert Settings().workers == "auto"
    assert Settings().worker_count() == 3
    assert Settings(workers=5).worker_count() == 5


def test_auto_never_starts_more_than_the_most_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.settings.usable_cpus", lambda: 256)

    assert Settings().worker_count() == MAX_WORKERS


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), ("2", 2)])
def test_workers_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: object
) -> None:
    monkeypatch.setenv("VOICEID_WORKERS", value)

    assert Settings().workers == expected


@pytest.mark.parametrize("value", ["0", "65", "many", "-1"])
def test_workers_refuse_anything_but_a_count_or_auto(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("VOICEID_WORKERS", value)

    with pytest.raises(ValidationError, match="workers"):
        Settings()


@pytest.mark.parametrize(("argv", "expected"), [([], 3), (["--workers", "auto"], 3),
                                                (["--workers", "1"], 1)])  # fmt: skip
def test_voiceid_serve_starts_the_usable_cpus_by_default(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: int
) -> None:
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: started.update(kw))
    monkeypatch.setattr("service.settings.usable_cpus", lambda: 3)
    monkeypatch.setenv("VOICEID_PORT", str(free_port()))  # serve checks that it may listen
    for name in ("VOICEID_WORKERS", "VOICEID_ACTIVE_MODEL_FILE", "_VOICEID_SUPERVISOR_PID"):
        monkeypatch.setenv(name, "")  # recorded, so teardown removes what serve sets
        monkeypatch.delenv(name)

    assert main(["serve", *argv]) == 0
    assert started["workers"] == expected


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_voiceid_serve_refuses_a_bad_worker_count(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--workers", value])

    assert capsys.readouterr().err.endswith(
        f"voiceid serve: error: argument --workers: {value!r} is neither a number from 1 to 64 "
        "nor 'auto'\n"
    )


def test_voiceid_serve_names_the_option_a_wrong_value_came_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICEID_PORT", "")  # recorded, so teardown removes what serve sets
    monkeypatch.delenv("VOICEID_PORT")

    assert main(["serve", "--port", "99999"]) == 2
    assert capsys.readouterr().err == (
        "voiceid serve: error: --port 99999: Input should be less than or equal to 65535\n"
    )


# Memory: `auto` starts no more workers than the cgroup's memory limit holds


@pytest.mark.parametrize(
    ("proc_lines", "files", "expected"),
    [(["0::/"], {"memory.max": "167772160"}, 167772160), (["0::/"], {"memory.max": "max"}, None),
     (["12:memory:/docker/abc"], {"memory/memory.limit_in_bytes": "268435456"}, 268435456),
     (["12:memory:/docker/abc"], {"memory/memory.limit_in_bytes": "9223372036854771712"}, None),
     (["0::/"], {"memory.max": "garbage"}, None), (["0::/"], {}, None)],
    ids=["v2", "v2 max", "v1", "v1 unlimited", "unreadable", "no file"],
)  # fmt: skip
def test_the_cgroup_memory_limit_is_read_from_v2_or_v1(
    tmp_path: Path, proc_lines: list[str], files: dict[str, str], expected: int | None
) -> None:
    assert cgroup_memory_limit(**fake_cgroups(tmp_path, proc_lines, files)) == expected


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(160 * MIB, 1), (256 * MIB, 1), (512 * MIB, 4), (1024 * MIB, 4), (None, 4), (10 * MIB, 1)],
)
def test_auto_starts_no_more_workers_than_the_memory_limit_holds(
    monkeypatch: pytest.MonkeyPatch, limit: int | None, expected: int
) -> None:
    """Each worker holds a model: a container limited to 160 MB that started 2 had them killed
    for memory and started again, over and over, with nothing in its log to say why."""
    monkeypatch.setattr("service.settings.usable_cpus", lambda: 4)
    monkeypatch.setattr("service.settings.cgroup_memory_limit", lambda: limit)

    assert Settings().worker_count() == expected
    assert Settings(workers=3).worker_count() == 3  # a count given is a count taken
