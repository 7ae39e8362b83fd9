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

import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

__all__ = ["NOISE", "filtered_stderr", "forward"]

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


@contextmanager
def filtered_stderr(noise: Sequence[re.Pattern[bytes]] = NOISE) -> Iterator[None]:
    """Within the block, standard error loses the lines ``noise`` matches, at the file
    descriptor, so C++ libraries' lines are filtered too. Where descriptor 2 cannot be
    duplicated (closed, or a platform without pipes), the block runs unfiltered."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_end, write_end = os.pipe()
    except (OSError, ValueError, AttributeError):
        yield
        return
    # The thread writes to its own copy: a process started inside the block keeps the pipe open,
    # and its later lines are still passed on after the block ends.
    thread = threading.Thread(target=forward, args=(read_end, os.dup(saved), noise), daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        with suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer here closes: the thread sees its end
        os.close(saved)
        thread.join(timeout=0.2)  # what was written inside the block comes out first
