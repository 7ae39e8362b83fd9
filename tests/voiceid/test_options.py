"""Command-line options come from the configs' fields: one declaration each."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest

from pipeline.config import TrainConfig, option
from pipeline.train import TrainOptions
from voiceid.cli import _build_parser
from voiceid.options import add_options, from_options


@dataclasses.dataclass(frozen=True)
class Toy:
    mode: typing.Literal["fast", "slow"] = option("fast", "how")
    level: float | None = option(None, "how much")
    loud: bool = option(True, "make noise", off="keep quiet")
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


def test_a_switch_on_by_default_is_described_by_what_its_flag_does() -> None:
    parser = argparse.ArgumentParser()
    add_options(parser, Toy)

    (loud,) = [a for a in parser._actions if a.dest == "loud"]

    assert (loud.option_strings, loud.help) == (
        ["--no-loud"],
        "keep quiet (without this flag: make noise)",
    )


def test_a_switch_on_by_default_needs_the_help_of_its_flag() -> None:
    with pytest.raises(TypeError, match=r"option\(True, 'make noise'\) needs off="):
        option(True, "make noise")


@pytest.mark.parametrize(
    ("flag", "help_text"),
    [("--no-augment", "train on the clips as recorded only, without degraded copies (without "
                      "this flag: also train on degraded copies of each training clip"),
     ("--no-class-weights", "let every clip weigh the same in the loss, however many clips its "
                            "speaker has (without this flag: weight the loss by the inverse")],
)  # fmt: skip
def test_voiceid_train_help_says_what_each_no_flag_does(
    capsys: pytest.CaptureFixture[str], flag: str, help_text: str
) -> None:
    with pytest.raises(SystemExit):
        _build_parser("train").parse_args(["train", "--help"])

    help_page = " ".join(capsys.readouterr().out.split())

    assert f"{flag} {help_text}" in help_page


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
