"""``python -m voiceid``: the same as the ``voiceid`` command."""

from voiceid.cli import run

run()
