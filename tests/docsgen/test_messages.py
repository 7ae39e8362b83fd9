"""The message extractor on small packages written for the test, with known messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from docsgen.messages import (
    TODO,
    Template,
    code_span,
    code_spans,
    missing_from,
    page_entries,
    paste_form,
    stale_in,
    templates,
)

ERRORS = """
class VoiceIdError(Exception):
    pass

class AudioError(VoiceIdError):
    pass

class TooLong(AudioError):
    pass

class StreamClosed(Exception):
    def __init__(self, why, reason):
        super().__init__(reason)

class Refused(StreamClosed):
    pass
"""


def shown(root: Path, source: str, *, errors: str = ERRORS) -> list[str]:
    """The templates of a package ``pkg`` holding ``errors.py`` and ``mod.py`` (``source``)."""
    package = root / "pkg"
    package.mkdir(exist_ok=True)
    (package / "errors.py").write_text(textwrap.dedent(errors))
    (package / "mod.py").write_text(textwrap.dedent(source))
    return [t.shown for t in templates(root, ("pkg",))]


def test_a_derived_error_gives_its_f_string_with_named_placeholders(tmp_path: Path) -> None:
    source = """
    def check(seconds, limit):
        raise TooLong(f"clip is {seconds:.2f} s long; the maximum is {limit:g} s")
    """

    assert shown(tmp_path, source) == ["clip is {seconds} s long; the maximum is {limit} s"]


def test_exceptions_of_the_language_are_not_messages(tmp_path: Path) -> None:
    source = """
    def check():
        raise RuntimeError("an internal invariant broke")
        raise ValueError("not a message users meet")
    """

    assert shown(tmp_path, source) == []


def test_a_project_exception_gives_the_argument_its_init_calls_reason(tmp_path: Path) -> None:
    source = """
    def listen(size, limit):
        raise StreamClosed("too big", f"frame of {size} bytes is over {limit}")
        raise Refused("idle", reason="nothing arrived for 10 s")
    """

    assert shown(tmp_path, source) == [
        "frame of {size} bytes is over {limit}",
        "nothing arrived for 10 s",
    ]


def test_constants_locals_and_function_returns_are_followed(tmp_path: Path) -> None:
    source = """
    NOT_READY = "no model is loaded yet"
    HINT = "install the extra"

    def _message(purpose):
        return f"{purpose} needs the extra: {HINT}"

    def a():
        raise VoiceIdError(NOT_READY)

    def b(purpose):
        raise AudioError(_message(purpose))

    def c(running):
        named = f" (job {running})" if running else ""
        raise TooLong(f"a job is running{named}; wait")
    """

    assert shown(tmp_path, source) == [
        "no model is loaded yet",
        "{purpose} needs the extra: install the extra",
        "a job is running (job {running}); wait",
        "a job is running; wait",
    ]


def test_declared_sinks_give_their_message_argument(tmp_path: Path) -> None:
    source = """
    import sys
    import argparse

    def serve(host):
        sys.exit(f"refusing to listen on {host!r} without a key")

    def workers(text):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'auto'")

    def deny(why):
        return JSONResponse({"detail": f"writes need a key: {why}"}, status_code=403)

    class Trainer:
        def follow(self, job, record, timeout_s):
            self._finish(job, record, f"training took longer than {timeout_s:g} s")

    async def listen(websocket, rate):
        await websocket.close(code=1008, reason=f"sample_rate {rate} is out of range")
        raise HTTPException(status_code=404, detail="no such stream")

    def status(record):
        record |= {"state": "failed", "detail": "the server stopped before it finished"}
        record |= {"state": "running", "detail": "epoch 40"}

    def check(n):
        problems = []
        problems.append(f"the model has {n} outputs for 2 labels")
        others = [f"not a problem list {n}"]
        others.append("not a message either")
    """

    assert shown(tmp_path, source) == [
        "refusing to listen on {host} without a key",
        "{text} is neither a number nor 'auto'",
        "writes need a key: {why}",
        "training took longer than {timeout_s} s",
        "sample_rate {rate} is out of range",
        "no such stream",
        "the server stopped before it finished",
        "the model has {n} outputs for 2 labels",
    ]


def test_refusals_parser_errors_and_formatted_constants_are_messages_logs_are_not(
    tmp_path: Path,
) -> None:
    source = """
    CROSS_SITE = "writes come from this server's page only, and {why}: send no Origin"

    def refuse(host, why, parser, log, unknown):
        _Refusal(421, f"Host {host!r} is not a name this server answers to")
        _Refusal(403, CROSS_SITE.format(why=why))
        parser.error(f"unrecognized arguments: {unknown}")
        RefusedClip(file=host, status=409, detail=f"the store holds this clip as {why}'s")
        log.error("job %s failed: %s", host, why)
    """

    assert shown(tmp_path, source) == [
        "Host {host} is not a name this server answers to",
        "writes come from this server's page only, and {why}: send no Origin",
        "unrecognized arguments: {unknown}",
        "the store holds this clip as {why}'s",
    ]


def test_a_message_that_only_passes_on_another_is_left_out(tmp_path: Path) -> None:
    source = """
    def load(path, exc):
        raise VoiceIdError(f"{path}: {exc}")
        raise VoiceIdError(str(exc))
    """

    assert shown(tmp_path, source) == []


def test_an_error_class_of_another_module_counts(tmp_path: Path) -> None:
    errors = ERRORS + "\nclass ServiceError(VoiceIdError):\n    pass\n"
    source = """
    class NotFound(ServiceError):
        pass

    def find(job):
        raise NotFound(f"no training job {job!r}")
    """

    assert shown(tmp_path, source, errors=errors) == ["no training job {job}"]


def template(*parts: str | None) -> Template:
    """A template from literals, ``None`` standing for a placeholder."""
    from docsgen.messages import Hole

    return Template(tuple(Hole("x") if p is None else p for p in parts), "pkg/mod.py:1")


@pytest.mark.parametrize(
    "page",
    [
        "- `clip is 176.82 s long; the maximum is 60 s`",
        "- `clip is {seconds} s long; the maximum is {limit} s`",
        "Text around it, `clip is 2 s long;\nthe maximum is 1 s` wrapped.",
        "```text\nvoiceid predict: error: clip is 2 s long; the maximum is 1 s\n```",
    ],
)
def test_a_template_is_found_with_examples_placeholders_or_wrapped(page: str) -> None:
    wanted = [template("clip is ", None, " s long; the maximum is ", None, " s")]

    assert missing_from(page, wanted) == []


@pytest.mark.parametrize(
    "page",
    [
        "clip is 2 s long; the maximum is 1 s (not in a code span)",
        "- `clip is 2 s long; the limit is 1 s`",
        "- `clip is 2 s` and `long; the maximum is 1 s`",
    ],
)
def test_a_template_is_missing_unless_one_span_holds_it_all(page: str) -> None:
    wanted = [template("clip is ", None, " s long; the maximum is ", None, " s")]

    assert missing_from(page, wanted) == wanted


def test_code_spans_read_double_backticks_and_fenced_lines() -> None:
    page = "a `one` and `` two `with` ticks `` b\n```sh\nthree four\n```\n`five\nsix`"

    assert sorted(code_spans(page)) == ["five six", "one", "three four", "two `with` ticks"]


def test_the_paste_form_once_pasted_is_found_and_flagged_as_unfinished() -> None:
    wanted = [
        template("clip is ", None, " s long"),
        template("upgrade it with `voiceid convert ", None, "`, or train it again"),
    ]

    pasted = paste_form(wanted)

    assert missing_from(pasted, wanted) == []
    assert pasted.count(TODO) == 2
    assert page_entries(pasted) == [
        "clip is {x} s long",
        "upgrade it with `voiceid convert {x}`, or train it again",
    ]


def test_code_span_fences_text_with_backticks() -> None:
    assert code_span("plain") == "`plain`"
    assert code_span("run `make teach`") == "`` run `make teach` ``"


def test_page_entries_no_template_matches_are_stale() -> None:
    page = "- `clip is 3 s long`\n- `a message that was reworded`\n- prose, not an entry"

    assert stale_in(page, [template("clip is ", None, " s long")]) == [
        "a message that was reworded"
    ]
