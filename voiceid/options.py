"""Command-line options derived from config dataclasses, so each option is declared once.

A field declared with ``pipeline.config.option`` (a default and help text, optionally a flag)
becomes ``--field-name``: a ``Literal`` type gives the choices, a ``bool`` that defaults to true
gives ``--no-field-name`` (helped by the field's ``off`` text), ``X | None`` takes an ``X``.
Fields without help text are not options.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Collection
from typing import Any, Literal, TypeVar

__all__ = ["add_options", "from_options"]

T = TypeVar("T")


def _fields(config: type, only: Collection[str] | None, skip: Collection[str]) -> list[Any]:
    return [
        f
        for f in dataclasses.fields(config)
        if "help" in f.metadata and (only is None or f.name in only) and f.name not in skip
    ]


def _value_type(hint: Any) -> Any:
    """``X`` for ``X | None``, else the hint itself."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [k for k in typing.get_args(hint) if k is not type(None)]
        return kinds[0] if len(kinds) == 1 else hint
    return hint


def add_options(
    parser: argparse.ArgumentParser,
    config: type,
    *,
    only: Collection[str] | None = None,
    skip: Collection[str] = (),
) -> None:
    """Add an option to ``parser`` for each field of the dataclass ``config`` that has help text
    (those named in ``only``, when given, less those in ``skip``); ``dest`` is the field name."""
    hints = typing.get_type_hints(config)
    for f in _fields(config, only, skip):
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        kind, text = _value_type(hints[f.name]), f.metadata["help"]
        if kind is bool:
            negated = "--no-" + flag.removeprefix("--")
            parser.add_argument(
                negated if f.default else flag,
                dest=f.name,
                action="store_false" if f.default else "store_true",
                help=f"{f.metadata['off']} (without this flag: {text})" if f.default else text,
            )
        elif typing.get_origin(kind) is Literal:
            choices = typing.get_args(kind)
            parser.add_argument(flag, dest=f.name, choices=choices, default=f.default,
                                help=f"{text} (default: {f.default})")  # fmt: skip
        else:
            shown = "" if f.default is None else f" (default: {f.default!s})"
            metavar = flag.removeprefix("--").replace("-", "_").upper()
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default,
                                help=text + shown, metavar=metavar)  # fmt: skip


def from_options(
    config: type[T], args: argparse.Namespace, *, skip: Collection[str] = (), **fixed: Any
) -> T:
    """An instance of ``config`` from the options :func:`add_options` added to ``args`` (less
    ``skip``), plus the ``fixed`` fields given here."""
    values = {f.name: getattr(args, f.name) for f in _fields(config, None, skip)
              if hasattr(args, f.name)}  # fmt: skip
    return config(**values, **fixed)
