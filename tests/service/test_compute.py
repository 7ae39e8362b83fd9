"""The compute queue: one worker thread, jobs in arrival order, batched hand-offs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import pytest

from service.compute import ComputeQueue

T = TypeVar("T")


def _run(main: Callable[[ComputeQueue], Awaitable[T]]) -> T:
    queue = ComputeQueue()

    async def go() -> T:
        return await main(queue)

    try:
        return asyncio.run(go())
    finally:
        queue.close()


def test_jobs_run_off_the_event_loop_on_one_thread() -> None:
    async def main(queue: ComputeQueue) -> tuple[int, set[int]]:
        ids = await asyncio.gather(*(queue.run(threading.get_ident) for _ in range(20)))
        return threading.get_ident(), set(ids)

    loop_thread, job_threads = _run(main)

    assert len(job_threads) == 1
    assert loop_thread not in job_threads


def test_each_caller_gets_its_own_result_or_exception() -> None:
    def job(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(f"job {i} failed")
        return i * i

    async def main(queue: ComputeQueue) -> list[int | BaseException]:
        calls = [queue.run(partial(job, i)) for i in range(10)]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = [str(o) if isinstance(o, ValueError) else o for o in _run(main)]

    assert outcomes == [
        "job 0 failed", 1, 4, "job 3 failed", 16, 25, "job 6 failed", 49, 64, "job 9 failed",
    ]  # fmt: skip


def test_jobs_queued_while_the_thread_is_busy_go_over_in_one_batch() -> None:
    order: list[int] = []
    release = threading.Event()

    async def main(queue: ComputeQueue) -> tuple[int, int]:
        # the first job's batch is out from its hand-over; it holds the thread until the
        # eight are queued, however slow the host
        first = asyncio.ensure_future(queue.run(partial(release.wait, 5)))
        rest = [asyncio.ensure_future(queue.run(partial(order.append, i))) for i in range(8)]
        await asyncio.sleep(0)  # each of the eight queues its job before this resumes
        release.set()
        await asyncio.gather(first, *rest)
        return queue.batches, queue.jobs

    batches, jobs = _run(main)

    assert (batches, jobs) == (2, 9)
    assert order == list(range(8))


def test_a_cancelled_job_is_skipped_and_the_rest_still_run() -> None:
    ran: list[str] = []
    release = threading.Event()

    async def main(queue: ComputeQueue) -> list[str]:
        blocker = asyncio.ensure_future(queue.run(lambda: release.wait(5)))
        await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(queue.run(lambda: ran.append("gone")))
        kept = asyncio.ensure_future(queue.run(lambda: ran.append("kept")))
        await asyncio.sleep(0.01)
        gone.cancel()
        release.set()
        await asyncio.gather(blocker, kept)
        with pytest.raises(asyncio.CancelledError):
            await gone
        return ran

    assert _run(main) == ["kept"]


def test_a_new_event_loop_is_served_even_if_the_last_stopped_with_a_batch_out() -> None:
    queue = ComputeQueue()
    release = threading.Event()

    async def give_up_waiting() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.run(lambda: release.wait(5)), 0.05)

    async def one() -> int:
        return await asyncio.wait_for(queue.run(lambda: 7), 5)

    asyncio.run(give_up_waiting())  # its loop is closed with the batch still running
    release.set()
    try:
        assert asyncio.run(one()) == 7
        queue.close()
        assert asyncio.run(one()) == 7
    finally:
        queue.close()


def test_a_short_job_runs_on_the_event_loop_without_a_hand_off() -> None:
    async def main(queue: ComputeQueue) -> tuple[int, int]:
        return threading.get_ident(), await queue.run(threading.get_ident, short=True)

    queue = ComputeQueue()
    loop_thread, job_thread = asyncio.run(main(queue))

    assert job_thread == loop_thread
    assert (queue.inline, queue.batches, queue.jobs) == (1, 0, 0)


def test_a_short_jobs_exception_is_raised_to_its_caller() -> None:
    def fail() -> None:
        raise ValueError("short job failed")

    with pytest.raises(ValueError, match="short job failed"):
        asyncio.run(ComputeQueue().run(fail, short=True))
