"""The documentation site: the README's size and links, the references made from the code, and a
strict build of the whole site."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from docsgen.hooks import GENERATORS, expand
from docsgen.openapi import api_schema, render_api
from docsgen.reference import cli_help, render_cli, render_settings
from service.settings import Settings
from tests.helpers import ROOT
from voiceid.cli import PARSERS

README_MAX_LINES = 150
DOCS = ROOT / "docs"


def test_the_readme_is_at_most_150_lines() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()

    assert len(lines) <= README_MAX_LINES


def test_every_local_link_and_picture_of_the_readme_exists() -> None:
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    local = [t for t in targets if not t.startswith(("http://", "https://"))]

    assert local
    assert [t for t in local if not (ROOT / t).exists()] == []


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_each_generated_reference_has_a_page_that_shows_it_and_a_note_for_the_source(
    name: str,
) -> None:
    marker = f"<!-- generated: {name} -->"
    pages = [p.read_text() for p in DOCS.glob("*.md") if marker in p.read_text()]

    assert pages != []
    # A reader of the Markdown file (on a forge, say) sees the note, where the site has the list.
    assert [f"{marker}\n> Reading this file in the repository? " in page for page in pages] == [
        True
    ] * len(pages)


def test_a_quoted_note_under_a_marker_goes_with_it() -> None:
    page = "# Settings\n\n<!-- generated: settings -->\n> Not built.\n> See `make docs`.\n\nAfter\n"

    assert expand(page) == "# Settings\n\n" + render_settings() + "\n\nAfter\n"


def test_expand_replaces_a_marker_and_names_the_known_ones_for_a_wrong_one() -> None:
    page = "# Settings\n\n<!-- generated: settings -->\n"

    assert expand(page) == "# Settings\n\n" + render_settings() + "\n"
    with pytest.raises(KeyError, match="no generator 'nope'; known: api, cli, settings"):
        expand("<!-- generated: nope -->")


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_the_cli_page_shows_each_commands_help_as_the_parser_prints_it(command: str) -> None:
    assert f"$ voiceid {command} --help\n{cli_help(command)}```" in render_cli()


def test_an_options_help_text_declared_in_a_config_reaches_the_page() -> None:
    import dataclasses

    from pipeline.config import TrainConfig

    declared = next(f for f in dataclasses.fields(TrainConfig) if f.name == "patience")
    help_text = " ".join(cli_help("train").split())

    assert "--patience PATIENCE" in cli_help("train")
    assert declared.metadata["help"] in help_text


def test_the_cli_help_names_no_home_folder_of_the_machine_that_built_it() -> None:
    assert str(Path.home()) + "/" not in render_cli()


# -- the settings ----------------------------------------------------------------------------


def test_every_setting_is_in_the_table_with_its_description() -> None:
    table = render_settings()

    for name, field in Settings.model_fields.items():
        row = next(r for r in table.splitlines() if r.startswith(f"| `VOICEID_{name.upper()}` |"))
        assert " ".join((field.description or "").split()) in row


# -- the HTTP API ----------------------------------------------------------------------------

SMALL_SCHEMA: dict[str, Any] = {
    "paths": {
        "/things/{name}": {
            "get": {
                "tags": ["things"],
                "summary": "One thing",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "the thing",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                        },
                    },
                    "404": {"description": "no such | thing"},
                },
            }
        }
    },
    "components": {
        "schemas": {
            "Thing": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "description": "in\nbytes"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "kind": {"anyOf": [{"enum": ["a", "b"]}, {"type": "null"}]},
                },
            }
        }
    },
}


def test_render_api_writes_operations_and_schemas_as_tables() -> None:
    assert render_api(SMALL_SCHEMA) == (
        "## Things\n\n"
        "### `GET /things/{name}`\n\n**One thing**\n\n"
        "| parameter | in | type | required | description |\n| --- | --- | --- | --- | --- |\n"
        "| `name` | path | string | yes |  |\n\n"
        "| status | meaning | body |\n| --- | --- | --- |\n"
        "| 200 | the thing | [Thing](#thing) |\n"
        "| 404 | no such \\| thing |  |\n\n"
        "## Schemas\n\n"
        "### Thing\n\n"
        "| field | type | required | description |\n| --- | --- | --- | --- |\n"
        "| `size` | integer | yes | in bytes |\n"
        "| `tags` | array of string | no |  |\n"
        "| `kind` | `a` \\| `b` or null | no |  |\n"
    )


def test_the_api_page_covers_every_route_and_schema_of_the_app() -> None:
    schema = api_schema()
    page = render_api(schema)

    for path, item in schema["paths"].items():
        for method in item:
            assert f"### `{method.upper()} {path}`" in page
    for name in schema["components"]["schemas"]:
        assert f"\n### {name}\n" in page


# -- the site --------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr
    assert (tmp_path / "troubleshooting" / "index.html").is_file()
    assert "POST /predict" in (tmp_path / "api" / "index.html").read_text()


@pytest.mark.slow
def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[gone](nowhere.md) [no anchor](#nowhere)\n")
    config = (ROOT / "mkdocs.yml").read_text()
    config = re.sub(r"(?ms)^nav:.*", "", config).replace(
        "docsgen/hooks.py", str(ROOT / "docsgen/hooks.py")
    )
    (tmp_path / "mkdocs.yml").write_text(config)
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode != 0
    assert "nowhere.md" in done.stderr
    assert "#nowhere" in done.stderr
