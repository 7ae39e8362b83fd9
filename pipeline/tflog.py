"""TensorFlow's lines from before its logging starts, which ``TF_CPP_MIN_LOG_LEVEL`` cannot stop.

Importing TensorFlow 2.21 writes, straight to file descriptor 2, absl's "WARNING: All log
messages before absl::InitializeLog() is called are written to STDERR" and an info line from
``port.cc`` ("oneDNN custom operations are on..."), twice each, whatever the level: they come
before the level is read. On every ``voiceid train`` or ``enrol`` they look like errors. So the
import runs inside :func:`absl_preamble_dropped`, which holds what is written to descriptor 2
meanwhile and writes it back without those lines, when the level hides info lines (``pipeline``
sets 2 unless told; 0 shows everything, as TensorFlow would).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PREAMBLE", "absl_preamble_dropped"]

# absl's own warning that it has not started, and its info lines (I, then month and day)
PREAMBLE = re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\)|I\d{4} ")
LEVEL = "TF_CPP_MIN_LOG_LEVEL"


def _hides_info() -> bool:
    return os.environ.get(LEVEL, "0").strip() in {"1", "2", "3"}


@contextmanager
def absl_preamble_dropped() -> Iterator[None]:
    """Run the body with what is written to descriptor 2 held in a file, then write it back
    without the lines :data:`PREAMBLE` matches, when ``TF_CPP_MIN_LOG_LEVEL`` hides info lines;
    otherwise, or with no descriptor 2 to hold, just run the body. What the body raises is
    raised after the rest is written back."""
    try:
        saved = os.dup(2) if _hides_info() else None
    except OSError:  # no descriptor 2 (a daemon's)
        saved = None
    if saved is None:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True)
                    if not PREAMBLE.match(line)]  # fmt: skip
            if kept:
                os.write(2, b"".join(kept))
