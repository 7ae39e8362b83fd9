"""Every error message of the code is on the troubleshooting page, and the page lists no other.

When a test here fails, its message is what to paste (``make docs-errors`` prints the same).
"""

from __future__ import annotations

from docsgen.messages import PAGE, TODO, missing_from, paste_form, stale_in, templates

MIN_MESSAGES = 150  # the extractor found 172 when this was written: far fewer means it broke


def test_the_extractor_finds_the_messages_of_the_code() -> None:
    found = [t.shown for t in templates()]

    assert len(found) >= MIN_MESSAGES
    assert "clip has no samples" in found
    assert "missing API key: {how}" in found  # where to send it is said by each caller


def test_every_message_of_the_code_is_on_the_page() -> None:
    missing = missing_from(PAGE.read_text(), templates())

    assert not missing, (
        f"{len(missing)} messages missing from docs/troubleshooting.md; paste each under its "
        f"heading and say what it means and what to do:\n\n{paste_form(missing)}"
    )


def test_the_page_lists_no_message_the_code_no_longer_gives() -> None:
    stale = stale_in(PAGE.read_text(), templates())

    assert not stale, "reworded or gone from the code; update or remove:\n" + "\n".join(stale)


def test_no_pasted_entry_is_left_unfinished() -> None:
    assert TODO not in PAGE.read_text()
