"""Dependencies point one way: ``pipeline`` knows nothing of ``service`` or ``voiceid``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

# package -> the packages it must never import
FORBIDDEN = {"pipeline": ("service", "voiceid"), "service": ("voiceid",)}


def imported_modules(path: Path) -> list[str]:
    """Every module an ``import`` or ``from ... import`` statement in ``path`` names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_none_of_the_layers_above_it(package: str) -> None:
    offending = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]

    assert offending == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from service.main import serve\n    import voiceid.cli\n")

    assert imported_modules(module) == ["service.main", "voiceid.cli"]
