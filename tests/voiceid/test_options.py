"""Command-line options come from the configs' fields: one declaration each."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing

import pytest

from pipeline.config import TrainConfig, option
from pipeline.train import TrainOptions
from tests.helpers import ROOT
from voiceid.cli import _build_parser
from voiceid.options import add_options, from_options


@dataclasses.dataclass(frozen=True)
class Toy:
    mode: typing.Literal["fast", "slow"] = option("fast", "how")
    level: float | None = option(None, "how much")
    loud: bool = option(True, "make noise")
    quiet: bool = option(False, "keep still")
    steps: int = option(3, "how many", flag="--n")
    hidden: int = 7  # no help text: not an option


def parse(config: type, *argv: str, **kwargs: typing.Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser, config, **kwargs)
    return parser.parse_args(argv)


def test_each_field_with_help_text_becomes_an_option_of_its_type() -> None:
    args = parse(Toy, "--mode", "slow", "--level", "0.5", "--no-loud", "--quiet", "--n", "9")

    assert from_options(Toy, args) == Toy("slow", 0.5, False, True, 9)
    assert from_options(Toy, parse(Toy)) == Toy()


def test_choices_come_from_the_literal_type() -> None:
    with pytest.raises(SystemExit):
        parse(Toy, "--mode", "medium")


def test_fields_without_help_text_are_not_options() -> None:
    with pytest.raises(SystemExit):
        parse(Toy, "--hidden", "2")


def test_only_and_skip_choose_fields() -> None:
    args = parse(Toy, "--n", "2", only=("steps", "mode"), skip=("mode",))

    assert vars(args) == {"steps": 2}


def test_voiceid_train_without_options_gives_the_default_configs() -> None:
    args = _build_parser().parse_args(["train", "data", "--out", "m"])

    assert from_options(TrainConfig, args) == TrainConfig()
    assert from_options(TrainOptions, args, train=TrainConfig()) == TrainOptions()


def test_every_train_option_is_in_the_readme() -> None:
    parser = _build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = commands._name_parser_map["train"]
    flags = {flag for action in train._actions for flag in action.option_strings}
    readme = (ROOT / "README.md").read_text()

    missing = sorted(
        f for f in flags - {"-h", "--help"} if not re.search(rf"(?<![\w-]){f}(?![\w-])", readme)
    )

    assert missing == []
