"""Keep TensorFlow's start-up lines off a user's terminal, and nothing else.

Importing TensorFlow prints, from C++ and before its own logging starts, "WARNING: All log
messages before absl::InitializeLog() is called are written to STDERR" and an info line that
oneDNN's operations are on, twice each. ``TF_CPP_MIN_LOG_LEVEL`` does not reach them (absl
logs them before it reads any setting), and turning oneDNN off would change the numbers training
gives. So while TensorFlow loads, the process's standard error (file descriptor 2, which C++
writes to) runs through a pipe: a thread passes on every line as it comes, carriage-return
progress included, and drops only lines that are exactly these.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

__all__ = ["NOISE", "filtered_stderr", "forward", "restore_stderr"]

NOISE = (
    re.compile(
        rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written "
        rb"to STDERR\n"
    ),
    re.compile(rb"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*\n"),
)
_PIECE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)")  # one line, or one redraw of a progress line


def forward(source: int, dest: int, noise: Sequence[re.Pattern[bytes]] = NOISE) -> None:
    """Copy ``source`` to ``dest`` until end of file, piece by piece as each ends, leaving out
    the pieces that ``noise`` matches whole; closes both."""
    pending = b""
    try:
        while chunk := os.read(source, 65536):
            pending += chunk
            end = 0
            for piece in _PIECE.finditer(pending):
                end = piece.end()
                if not any(n.fullmatch(piece.group()) for n in noise):
                    os.write(dest, piece.group())
            pending = pending[end:]
        if pending:
            os.write(dest, pending)
    except OSError:  # the terminal went away: nothing more can be shown
        pass
    finally:
        os.close(source)
        os.close(dest)


class _Filter:
    """Descriptor 2 through a pipe to a thread running :func:`forward`, until :meth:`end`."""

    def __init__(self, noise: Sequence[re.Pattern[bytes]]) -> None:
        self._lock = threading.Lock()
        self._saved: int | None = os.dup(2)
        try:
            read_end, write_end = os.pipe()
        except OSError:
            os.close(self._saved)
            raise
        # The thread writes to its own copy: a process started meanwhile keeps the pipe open,
        # and its later lines are still passed on after the filter ends.
        out = os.dup(self._saved)
        self._thread = threading.Thread(target=forward, args=(read_end, out, noise),
                                        daemon=True)  # fmt: skip
        self._thread.start()
        os.dup2(write_end, 2)
        os.close(write_end)
        # A process that exits while TensorFlow loads in another thread (an error found first)
        # must not leave its last lines in the pipe: daemon threads stop at exit.
        atexit.register(self.end)
        _ACTIVE.add(self)

    def end(self) -> None:
        """Descriptor 2 as it was, once the lines written so far are passed on; idempotent."""
        with self._lock:
            if self._saved is None:
                return
            with suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(self._saved, 2)  # the pipe's last writer here closes: the thread sees its end
            os.close(self._saved)
            self._saved = None
        atexit.unregister(self.end)
        _ACTIVE.discard(self)
        self._thread.join(timeout=0.5)  # what was written while filtering comes out first


_ACTIVE: set[_Filter] = set()


def restore_stderr() -> None:
    """End every filter still running, its lines passed on: for an exit that skips ``atexit``
    (``os._exit``, as the ``voiceid`` command's)."""
    for active in list(_ACTIVE):
        active.end()


@contextmanager
def filtered_stderr(noise: Sequence[re.Pattern[bytes]] = NOISE) -> Iterator[None]:
    """Within the block, standard error loses the lines ``noise`` matches, at the file
    descriptor, so C++ libraries' lines are filtered too. Where descriptor 2 cannot be
    duplicated (closed, or a platform without pipes), the block runs unfiltered."""
    try:
        sys.stderr.flush()
        active = _Filter(noise)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        active.end()
