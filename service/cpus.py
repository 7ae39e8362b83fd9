"""How many CPUs, and how much memory, this process may use: ``voiceid serve --workers auto``
starts a worker per CPU, as many as the memory holds.

``os.cpu_count()`` is the host's count, which in a container limited to 1.5 CPUs on a 64-core
host would start 64 workers, each with a model and its own memory, fighting for 1.5 CPUs. What
the process may really use is the smaller of

- its affinity mask (``os.sched_getaffinity``: ``taskset``, ``docker run --cpuset-cpus``), and
- the tightest CPU quota of its cgroup or any cgroup above it (``docker run --cpus``, Kubernetes
  limits, systemd's ``CPUQuota``): cgroup v2 ``cpu.max`` (``"150000 100000"`` is 1.5 CPUs,
  ``"max 100000"`` no limit), cgroup v1 ``cpu.cfs_quota_us / cpu.cfs_period_us`` (-1: no limit).

A fractional quota is rounded up (1.5 CPUs: 2 workers), so that the time it grants is used: a
worker is one Python thread of compute, held to one core by the GIL. The memory limit is read
the same way (``docker run --memory``): cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["cgroup_cpu_limit", "cgroup_memory_limit", "usable_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")  # where cgroup v2 (or v1's controller folders) is mounted
PROC_SELF_CGROUP = Path("/proc/self/cgroup")  # this process's cgroup in each hierarchy
# cgroup v1 writes "no limit" as the largest page count it holds, in bytes: about 2**63.
NO_MEMORY_LIMIT = 1 << 60


def usable_cpus(
    *,
    affinity: set[int] | None = None,
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_SELF_CGROUP,
) -> int:
    """The CPUs this process may use (at least 1): its affinity mask, capped by any cgroup
    quota rounded up. The keyword arguments stand in for the system's, for tests."""
    cpus = len(affinity if affinity is not None else _affinity())
    quota = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):  # Linux; elsewhere every CPU is allowed
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def cgroup_cpu_limit(
    cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP
) -> float | None:
    """The tightest CPU quota, in CPUs, on this process's cgroup or any above it (v2 or v1);
    None when there is none, or no cgroup file can be read."""
    return _tightest(cgroup_root, proc_cgroup, "cpu", _v2_limit, _v1_limit)


def cgroup_memory_limit(
    cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP
) -> int | None:
    """The tightest memory limit, in bytes, on this process's cgroup or any above it (v2 or
    v1); None when there is none, or no cgroup file can be read."""
    limit = _tightest(cgroup_root, proc_cgroup, "memory", _v2_memory, _v1_memory)
    return None if limit is None else int(limit)


def _tightest(
    cgroup_root: Path,
    proc_cgroup: Path,
    controller: str,
    read_v2: Callable[[Path], float | None],
    read_v1: Callable[[Path], float | None],
) -> float | None:
    """The smallest limit ``read_v2`` (cgroup v2) or ``read_v1`` (``controller``'s v1
    hierarchy) finds on this process's cgroup or above it; None when there is none."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":  # v2: one unified hierarchy
            limits += _limits_up_from(cgroup_root, path, read_v2)
        elif controller in controllers.split(","):  # v1: the controller's own hierarchy
            mounts = (cgroup_root / controllers, cgroup_root / controller,
                      cgroup_root / f"{controller},{controller}acct")  # fmt: skip
            mount = next((m for m in mounts if m.is_dir()), None)
            if mount is not None:
                limits += _limits_up_from(mount, path, read_v1)
    return min(limits, default=None)


def _limits_up_from(mount: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    """The quotas of cgroup ``path`` under ``mount`` and of each cgroup above it. In a container
    whose cgroup is mounted as the root (without a cgroup namespace, /proc/self/cgroup names the
    host's path, absent here), the folders that do not exist are skipped: the root is its own."""
    parts = [part for part in path.strip("/").split("/") if part]
    limits = []
    for depth in range(len(parts), -1, -1):
        folder = mount.joinpath(*parts[:depth])
        limit = read(folder) if folder.is_dir() else None
        if limit is not None:
            limits.append(limit)
    return limits


def _v2_limit(folder: Path) -> float | None:
    fields = _read(folder / "cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_limit(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if not quota or not period or quota.startswith("-"):
        return None
    return _ratio(quota, period)


def _v2_memory(folder: Path) -> float | None:
    return _bytes(_read(folder / "memory.max"))


def _v1_memory(folder: Path) -> float | None:
    return _bytes(_read(folder / "memory.limit_in_bytes"))


def _bytes(text: str) -> float | None:
    """A memory limit's bytes; None for "max", v1's no-limit value or what is not a number."""
    if not text.isdigit() or not 0 < int(text) < NO_MEMORY_LIMIT:
        return None
    return float(text)


def _ratio(quota: str, period: str) -> float | None:
    try:
        limit = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None
    return limit if limit > 0 else None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
