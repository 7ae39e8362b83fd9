"""One compute thread per process, fed in batches.

Decoding and features are a fraction of a millisecond of CPU that mostly holds the GIL, so they
run off the event loop on one thread per process (several would only trade the GIL back and
forth). Handing each request to that thread on its own costs two thread wake-ups and GIL
hand-offs, a large share of the work itself. So jobs that arrive while the thread is busy queue
up and go over together, one hand-off per batch; each result is delivered as soon as it is ready,
so a job never waits for the rest of its batch.

A job its caller knows to be short (a small 16-bit PCM WAV: read by numpy alone, no library or
subprocess) runs on the event loop itself: its hand-off, and the GIL traded back and forth with
the thread, cost more CPU than the job. It starts at once, so it never waits past a budget, and
it holds the loop for less than a client's request takes to arrive. ``python -m bench.serve``
measures both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from service.errors import OverloadedError

__all__ = ["ComputeQueue"]

T = TypeVar("T")
_Job = tuple[Callable[[], Any], "asyncio.Future[Any]"]


class ComputeQueue:
    """Runs callables on one worker thread, first come first served, in batches."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[_Job] = []
        self._busy_on: asyncio.AbstractEventLoop | None = None  # the loop of the batch out
        self.batches = 0  # hand-offs to the thread so far
        self.jobs = 0  # jobs handed over
        self.inline = 0  # short jobs run on the event loop

    async def run(
        self, fn: Callable[[], T], *, budget_s: float | None = None, short: bool = False
    ) -> T:
        """``fn()`` on the compute thread, or here when it is ``short``; its exception, if
        any, is raised here.

        With ``budget_s``, a job not done within that many seconds (waiting included) raises
        :class:`OverloadedError`; if it has not started, it never does.
        """
        if short:
            self.inline += 1
            return fn()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        # A batch out for another loop (one that stopped before it came back) does not count.
        if self._busy_on is not loop:
            self._hand_over(loop)
        try:
            return await asyncio.wait_for(future, budget_s)
        except TimeoutError:
            raise OverloadedError(
                f"the server is busy: the clip was not done within {budget_s:g} s"
            ) from None

    def close(self) -> None:
        """Let the thread go once the jobs handed over are done; a later job starts another."""
        self._busy_on = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # Everything below but _work runs on the event loop, so the queue needs no lock.

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        self._busy_on = loop
        self.batches += 1
        self.jobs += len(batch)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="voiceid-compute")
        self._executor.submit(self._work, loop, batch)

    def _work(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> None:
        try:
            for fn, future in batch:
                if future.cancelled():  # its client has gone
                    continue
                try:
                    result, error = fn(), None
                except BaseException as exc:  # delivered to the caller, whatever it is
                    result, error = None, exc
                loop.call_soon_threadsafe(_settle, future, result, error)
        finally:
            loop.call_soon_threadsafe(self._batch_done, loop)

    def _batch_done(self, loop: asyncio.AbstractEventLoop) -> None:
        self._busy_on = None
        if self._pending:
            self._hand_over(loop)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled while it ran
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
