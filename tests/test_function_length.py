"""Small functions: none in pipeline/, service/ or voiceid/ runs over 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGES = ("pipeline", "service", "voiceid")
MAX_LINES = 60  # from the `def` line (decorators left out) to the last line of the body


def long_functions(path: Path, limit: int = MAX_LINES) -> list[str]:
    """``name:line (n lines)`` for each function or method in ``path`` longer than ``limit``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{node.name}:{node.lineno} ({lines} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (lines := (node.end_lineno or node.lineno) - node.lineno + 1) > limit
    ]


def test_no_function_is_over_60_lines() -> None:
    paths = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))

    too_long = {str(p.relative_to(ROOT)): found for p in paths if (found := long_functions(p))}

    assert too_long == {}


def test_the_check_counts_from_def_to_the_last_line_of_nested_functions_too(
    tmp_path: Path,
) -> None:
    body = "        x = 1\n" * 59
    path = tmp_path / "m.py"
    path.write_text(f"@decorator\ndef outer():\n    def inner():\n{body}\n    return inner\n")

    assert long_functions(path, limit=63) == []
    assert long_functions(path, limit=60) == ["outer:2 (63 lines)"]
    assert long_functions(path, limit=59) == ["outer:2 (63 lines)", "inner:3 (60 lines)"]
