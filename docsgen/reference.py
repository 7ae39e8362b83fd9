"""The command-line and settings references in Markdown, from the parser and the settings model.

``voiceid --help`` and ``voiceid COMMAND --help`` are printed by the parser ``voiceid.cli``
builds; the page shows that very text, at a fixed width. The settings table comes from the
fields of ``service.settings.Settings``, each with its description and default.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

__all__ = ["WIDTH", "cli_help", "render_cli", "render_settings"]

WIDTH = 100  # columns of the help text on the page


def cli_help(command: str | None = None) -> str:
    """What ``voiceid --help`` (``voiceid COMMAND --help``) prints, ``WIDTH`` columns wide, with
    this machine's home folder written as ``~``."""
    from voiceid.cli import _build_parser

    parser = _build_parser(command)
    if command is not None:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subparsers.choices[command]
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=WIDTH)
    return parser.format_help().replace(str(Path.home()), "~")


def render_cli() -> str:
    """A section per command: its one-line purpose and its ``--help``."""
    from voiceid.cli import PARSERS

    parts = ["```text\n$ voiceid --help\n" + cli_help() + "```"]
    for command, (purpose, _) in PARSERS.items():
        parts.append(
            f"## voiceid {command}\n\n{purpose[0].upper()}{purpose[1:]}.\n\n"
            f"```text\n$ voiceid {command} --help\n{cli_help(command)}```"
        )
    return "\n\n".join(parts) + "\n"


def render_settings() -> str:
    """A table of every ``VOICEID_*`` setting: its variable, default and description."""
    from service.settings import Settings

    prefix = Settings.model_config["env_prefix"]
    lines = ["| variable | default | what |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = "(see what)" if field.default_factory is not None else _shown(field.default)
        what = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{prefix}{name.upper()}` | {default} | {what} |")
    return "\n".join(lines) + "\n"


def _shown(value: object) -> str:
    if value is None:
        return "unset"
    return f"`{value}`"
