"""Serving speed: this server against the compute-only limit, a naive server, and (optionally)
another checkout of this code, all measured in one run.

* **Compute-only limit**: the CPU time of the work a request exists for (decode the clip,
  60-bin histogram, forward pass, open-set decision), in this process on the same clip and
  bundle with BLAS held to one thread as the workers hold it, median of many; the limit is the
  number of cores the server may use divided by that. No server can answer faster.
* **Served**: each voiceid server runs as ``voiceid serve`` (the naive one under uvicorn) on
  loopback with the same number of workers, and wrk (the Debian package ``wrk``:
  ``apt-get install wrk``) posts the same 1 s 16 kHz WAV, as a multipart upload and as a raw
  ``audio/wav`` body, at concurrency 1, 8 and 32, the servers taking turns at each step so that
  a change in the machine's load falls on all of them; the naive server runs alone, after
  them, so that its TensorFlow threads and queued requests never share a measured run. A server
  is measured once all its processes are idle (every worker has started; voiceid's warm up
  their whole /predict path before they take connections), after a second of each body at
  concurrency 32 that is not measured; the output says so. Each figure is printed with
  p99/p50, its ratio to the limit, to the naive server (FastAPI,
  ``librosa.load``, ``model.predict``, multipart only) and, with ``--against``, to that
  checkout's server: a git worktree of the code before a change
  (``git worktree add ../before HEAD~3``). ``CPU/req`` is the server's own CPU time (all its
  processes, user and system) per answered request, which a loaded machine changes less than
  requests per second; ``cpu x`` is the compute-only time over it. The compute-only time is
  measured before and after the served runs, and their median taken.
* **Memory**: each voiceid worker's RSS, sampled while it answers ``--rss-requests`` raw
  requests at concurrency 8: at the start, the highest, and at the end.

    python -m bench.serve [--model models/default] [--duration 5] [--workers 2] [--rounds 1]
                          [--against ../before [--against-model ../before/models/default]]
                          [--no-naive] [--rss-requests 20000]

On a busy machine, take ``--rounds 3`` (each figure is the median over the rounds, and each ratio
between servers the median of the ratios within a round) and read the ratios between servers:
they share whatever load there is.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from pipeline.bundle import load_bundle
from pipeline.demo.synth import VOICES, synthesize_hello
from pipeline.predict import predict_clip
from service.cpus import usable_cpus

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32)
COMPUTE_REPEATS = 2000  # clips timed in-process for the compute-only limit
RSS_SAMPLE_S = 0.5
WARM_UP_S = 1.0  # each body at the highest concurrency, before the measured runs
WARMED = (
    f"warmed: voiceid's workers each answer a synthetic clip through the whole /predict path "
    f"before they take connections (service.inference.warm_up); every server is waited on "
    f"until all its processes are idle, then gets {WARM_UP_S:g} s of each body at concurrency "
    f"{max(CONCURRENCY)}, not measured; after every run each server is waited on until it has "
    f"finished the requests wrk left it, which count in its CPU per request"
)
IDLE_S, IDLE_CPU_SHARE = 0.5, 0.05  # a started server uses under this share of a core
SETTLE_S = 120.0  # the longest a server may take to finish what a run left it
BOUNDARY = "voiceidbenchboundary"
KINDS = {"multipart": f"multipart/form-data; boundary={BOUNDARY}", "raw": "audio/wav"}
VOICEID_APP = "voiceid serve"
NAIVE_APP = "bench.naive_server:app"
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "{content_type}"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_ms: float  # the server's CPU time per request
    wrk_cpu_ms: float  # wrk's own


@dataclass
class Server:
    name: str
    app: str
    root: Path
    kinds: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/predict"


def one_second_clip(sample_rate: int = 16_000) -> bytes:
    """A 1.000 s 16 kHz 16-bit WAV of Steve saying "Hello", padded with silence."""
    y = synthesize_hello(VOICES["Steve"], np.random.default_rng(123), sample_rate)[:sample_rate]
    y = np.pad(y, (0, sample_rate - len(y)))
    buf = io.BytesIO()
    sf.write(buf, y, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def multipart(clip: bytes) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"clip.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()  # fmt: skip
    return head + clip + f"\r\n--{BOUNDARY}--\r\n".encode()


def compute_times(model: Path, clip: bytes) -> list[float]:
    """CPU seconds of the work of one request, ``COMPUTE_REPEATS`` times, in this thread with
    BLAS at one thread."""
    bundle = load_bundle(model)
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(COMPUTE_REPEATS // 10):  # warm caches and lazily built arrays
            predict_clip(bundle, clip)
        times = []
        for _ in range(COMPUTE_REPEATS):
            started = time.thread_time()
            predict_clip(bundle, clip)
            times.append(time.thread_time() - started)
    return times


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(server: Server, model: Path, workers: int, log: Path) -> None:
    """Start ``server``, its output going to ``log`` (TensorFlow's notes would fill the
    report), and wait until it answers."""
    server.port = free_port()
    # Each server imports its own checkout's code, whatever PYTHONPATH this process has.
    env = os.environ | {"VOICEID_MODEL_DIR": str(model), "TF_CPP_MIN_LOG_LEVEL": "3",
                        "PYTHONPATH": str(server.root)}  # fmt: skip
    where = ["--host", "127.0.0.1", "--port", str(server.port), "--workers", str(workers)]
    if server.app == VOICEID_APP:  # as people run it, with its own uvicorn settings
        cmd = [sys.executable, "-m", "voiceid", "serve", "--model", str(model), *where]
        env |= {"VOICEID_LOG_LEVEL": "warning",
                "VOICEID_DATA_DIR": str(log.with_suffix(".speakers"))}  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "uvicorn", server.app, *where, "--log-level", "warning",
               "--no-access-log"]  # fmt: skip
    with log.open("wb") as out:
        server.proc = subprocess.Popen(cmd, cwd=server.root, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/docs", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        stop(server)
        raise SystemExit(f"{server.name} ({server.app} in {server.root}) did not start:\n"
                         + log.read_text(errors="replace")[-4000:])  # fmt: skip
    wait_idle(server, deadline)


def wait_idle(server: Server, deadline: float) -> None:
    """Wait until ``server``'s processes stop using CPU: one worker answering is not all of
    them started (each loads and warms up its model before it takes connections), and a run's
    last requests may still be in hand when wrk stops."""
    assert server.proc is not None
    pids = tree(server.proc.pid)
    used = cpu_s(pids)
    while time.monotonic() < deadline:
        time.sleep(IDLE_S)
        used, before = cpu_s(pids), used
        if used - before < IDLE_CPU_SHARE * IDLE_S:
            return
    stop(server)
    raise SystemExit(f"{server.name} ({server.app} in {server.root}) kept busy past its deadline")


def stop(server: Server) -> None:
    if server.proc is not None:
        server.proc.terminate()
        server.proc.wait(timeout=30)


def tree(pid: int) -> list[int]:
    """``pid`` and its children (the uvicorn workers, and multiprocessing's helpers)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *map(int, out.split())]


def workers_of(pid: int) -> list[int]:
    """The uvicorn worker processes of ``pid``, or ``pid`` itself when it serves alone."""
    spawned = [p for p in tree(pid)[1:]
               if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
    return spawned or [pid]


def cpu_s(pids: list[int]) -> float:
    """User and system CPU seconds of ``pids`` so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def wrk(server: Server, script: Path, connections: int, seconds: float) -> Run:
    assert server.proc is not None
    pids = tree(server.proc.pid)
    cpu_before, wrk_before = cpu_s(pids), _children_cpu_s()
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections),
         "-d", f"{math.ceil(seconds)}s",
         "--latency", "--timeout", "10s", "-s", str(script), server.url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    wrk_cpu = _children_cpu_s() - wrk_before
    # A server slower than wrk's clients still holds their last requests when wrk stops (the
    # naive one, seconds of them): they are its cost too, and the next run must not share the
    # cores with them.
    wait_idle(server, time.monotonic() + SETTLE_S)
    cpu = cpu_s(pids) - cpu_before

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match is None:
            raise SystemExit(f"cannot read the {pct}% latency from wrk:\n{out}")
        return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    n = max(requests, 1)
    return Run(rps, latency("50"), latency("99"), requests, int(errors.group(1)) if errors else 0,
               1000 * cpu / n, 1000 * wrk_cpu / n)  # fmt: skip


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_over(server: Server, script: Path, requests: int, rps: float) -> dict[int, list[float]]:
    """Each worker's RSS, MB, sampled while the server answers at least ``requests`` requests."""
    assert server.proc is not None
    workers = workers_of(server.proc.pid)
    samples: dict[int, list[float]] = {pid: [rss_mb(pid)] for pid in workers}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(RSS_SAMPLE_S):
            for pid in workers:
                samples[pid].append(rss_mb(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    answered = errors = 0
    try:
        while answered < requests:  # wrk runs for a time: as long again as the rate says
            run = wrk(server, script, 8, max(2.0, 1.1 * (requests - answered) / rps))
            answered, errors = answered + run.requests, errors + run.errors
            rps = min(rps, run.rps)
    finally:
        done.set()
        sampler.join()
    for pid in workers:
        samples[pid].append(rss_mb(pid))
    print(f"  {server.name}: RSS sampled over {answered} raw requests ({errors} non-2xx)")
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers, every server")
    parser.add_argument("--against", type=Path, help="another checkout to serve side by side")
    parser.add_argument(
        "--against-model", type=Path,
        help="the bundle that checkout serves (default: --model), for code that reads another "
             "bundle format",
    )  # fmt: skip
    parser.add_argument("--no-naive", action="store_true", help="leave the naive server out")
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="runs of each step, servers in turns; the median is reported",
    )  # fmt: skip
    parser.add_argument(
        "--rss-requests", type=int, default=20_000,
        help="requests answered while worker memory is sampled (0: none)",
    )  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serve.py needs wrk: apt-get install wrk (Debian, Ubuntu)")
    model = args.model.resolve()
    clip = one_second_clip()
    cores = min(args.workers, usable_cpus())
    times = compute_times(model, clip)
    print(f"compute-only at the start: {statistics.median(times) * 1000:.3f} ms", flush=True)
    servers = [Server("voiceid", VOICEID_APP, ROOT, tuple(KINDS))]
    if args.against is not None:
        servers.append(Server("before", VOICEID_APP, args.against.resolve(), tuple(KINDS)))
    # The naive server runs alone, after the others: TensorFlow's threads and the seconds of
    # requests it keeps queued are not to share the machine with another server's run.
    naive = None if args.no_naive else Server("naive", NAIVE_APP, ROOT, ("multipart",))
    rss: dict[str, dict[int, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scripts = write_scripts(Path(tmp), clip)
        try:
            for server in servers:
                served = model if server.name != "before" or args.against_model is None else (
                    args.against_model.resolve())  # fmt: skip
                start_warm(server, served, args.workers, Path(tmp), scripts)
            print(WARMED, flush=True)
            runs = serve_in_turns(servers, scripts, args.rounds, args.duration)
            if args.rss_requests:
                for server in servers:  # voiceid, and the checkout it is compared with
                    rps = median_run(runs[server.name, "raw", 8]).rps
                    rss[server.name] = rss_over(server, scripts["raw"], args.rss_requests, rps)
        finally:
            for server in servers:
                stop(server)
        if naive is not None:
            try:
                start_warm(naive, model, args.workers, Path(tmp), scripts)
                runs |= serve_in_turns([naive], scripts, args.rounds, args.duration)
            finally:
                stop(naive)
        servers += [naive] if naive is not None else []
    end = compute_times(model, clip)
    work_ms = statistics.median(times + end) * 1000
    limit = cores * 1000 / work_ms
    print(f"compute-only at the end: {statistics.median(end) * 1000:.3f} ms; both: "
          f"{work_ms:.3f} ms of CPU per 1 s clip (median of {2 * COMPUTE_REPEATS}), "
          f"limit {limit:.0f} req/s on {cores} core(s)")  # fmt: skip
    report(runs, servers, work_ms, limit, args.workers)
    report_rss(rss)
    return 0


def start_warm(server: Server, model: Path, workers: int, tmp: Path,
               scripts: dict[str, Path]) -> None:  # fmt: skip
    """Start ``server`` serving ``model`` and give it each of its bodies, not measured:
    connections, caches, the heap."""
    start(server, model, workers, tmp / f"{server.name}.log")
    for kind in server.kinds:
        wrk(server, scripts[kind], max(CONCURRENCY), WARM_UP_S)


def serve_in_turns(servers: list[Server], scripts: dict[str, Path], rounds: int,
                   seconds: float) -> dict[tuple[str, str, int], list[Run]]:  # fmt: skip
    """The runs of each server, body and concurrency, the servers taking turns."""
    runs: dict[tuple[str, str, int], list[Run]] = {}
    for c in CONCURRENCY:
        for kind in KINDS:
            for _ in range(rounds):
                for server in (s for s in servers if kind in s.kinds):
                    run = wrk(server, scripts[kind], c, seconds)
                    runs.setdefault((server.name, kind, c), []).append(run)
                    print(f"  {server.name} {kind} c={c}: {run.rps:.1f} req/s, "
                          f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
                          f"{run.cpu_ms:.3f} ms CPU/req (wrk {run.wrk_cpu_ms:.3f})",
                          flush=True)  # fmt: skip
    return runs


def median_run(runs: list[Run]) -> Run:
    """Each figure's median over ``runs``."""
    return Run(*(statistics.median(getattr(run, f.name) for run in runs) for f in fields(Run)))


def _ratio(ours: list[Run], theirs: list[Run] | None, spec: str) -> str:
    """The median over rounds of our req/s over theirs in the same round, or "-"."""
    ratios = [a.rps / b.rps for a, b in zip(ours, theirs or [], strict=False) if b.rps > 0]
    return format(statistics.median(ratios), spec) if ratios else "-"


def write_scripts(folder: Path, clip: bytes) -> dict[str, Path]:
    bodies = {"multipart": multipart(clip), "raw": clip}
    scripts = {}
    for kind, content_type in KINDS.items():
        body, script = folder / f"{kind}.body", folder / f"{kind}.lua"
        body.write_bytes(bodies[kind])
        script.write_text(LUA.format(content_type=content_type, body=body))
        scripts[kind] = script
    return scripts


def report(runs: dict[tuple[str, str, int], list[Run]], servers: list[Server], work_ms: float,
           limit: float, workers: int) -> None:  # fmt: skip
    results = {key: median_run(of) for key, of in runs.items()}
    names = [s.name for s in servers]
    print(f"\n1 s 16 kHz WAV, {workers} worker(s) per server (voiceid serve; the naive one "
          f"under uvicorn, alone after the others), wrk on loopback. "
          f"x limit: req/s over the compute-only limit ({limit:.0f} req/s); cpu x: compute-only "
          f"CPU ({work_ms:.3f} ms) over the server's CPU per request; x naive, x before: "
          "req/s over theirs in the same round (the naive server's round came after). Medians over "
          "the rounds.")  # fmt: skip
    print("| body | conc | server | req/s | p50 ms | p99 ms | p99/p50 | CPU ms/req | x limit "
          "| cpu x | x naive | x before |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in KINDS:
        for c in CONCURRENCY:
            for name in names:
                run = results.get((name, kind, c))
                if run is None:
                    continue
                vs_naive = _ratio(runs[name, kind, c], runs.get(("naive", kind, c)), ".1f")
                vs_before = _ratio(runs[name, kind, c], runs.get(("before", kind, c)), ".2f")
                print(f"| {kind} | {c} | {name} | {run.rps:.0f} | {run.p50_ms:.2f} | "
                      f"{run.p99_ms:.2f} | {run.p99_ms / run.p50_ms:.1f} | {run.cpu_ms:.3f} | "
                      f"{run.rps / limit:.0%} | {work_ms / run.cpu_ms:.0%} | {vs_naive} | "
                      f"{vs_before} |")  # fmt: skip
                if run.errors:
                    print(f"|   {name}: {run.errors:g} non-2xx responses of {run.requests:g} |")
    goals = []
    for kind, share in (("raw", 0.6), ("multipart", 0.5)):
        run = results["voiceid", kind, 32]
        goals.append(f"{kind} at 32: {run.rps / limit:.0%} of the limit (>= {share:.0%}), "
                     f"p99/p50 {run.p99_ms / run.p50_ms:.1f} (<= 2.5)")  # fmt: skip
    print("goals: " + "; ".join(goals))
    wrk_share = [f"{kind} {run.wrk_cpu_ms / run.cpu_ms:.0%}" for (name, kind, c), run
                 in results.items() if name == "voiceid" and c == 32]  # fmt: skip
    print("wrk's own CPU time next to voiceid's at 32: " + ", ".join(wrk_share))


def report_rss(rss: dict[str, dict[int, list[float]]]) -> None:
    for name, workers in rss.items():
        for i, samples in enumerate(workers.values()):
            print(f"{name} worker {i + 1} RSS: {samples[0]:.1f} MB at the start, "
                  f"{max(samples):.1f} MB at most, {samples[-1]:.1f} MB at the end "
                  f"({len(samples)} samples; goal <= 110 MB and flat)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
