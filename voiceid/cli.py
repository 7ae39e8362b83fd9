"""The ``voiceid`` command: features, train, evaluate, predict, timeline, demo-data, convert, enrol,
serve.

Each command imports what it needs when it runs, and only its own options are built: ``voiceid
serve`` and each of its worker processes (which re-import this module as their main module)
then load the service alone, not the training code, which would add 0.4 s to every start.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import (
    AudioError,
    ClipTooLongError,
    ParameterError,
    UnreadableClipError,
    VoiceIdError,
)
from pipeline.extras import require_training_stack
from pipeline.native_log import restore_stderr
from voiceid.options import add_options, from_options

if TYPE_CHECKING:
    from pipeline.dataset import Recording
    from pipeline.table import TableSummary
    from pipeline.timeline.turns import Segment

__all__ = ["main", "run"]

DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voiceid"


def _features_arguments(p: argparse.ArgumentParser) -> None:
    require_training_stack("voiceid features", ("pyarrow",))  # pipeline.table imports pyarrow
    from pipeline.table import TableOptions

    p.add_argument("data", help="a folder, or a URI pyarrow opens (s3://, gs://, hdfs://)")
    p.add_argument("--out", type=Path, required=True, help="the .parquet file to write")
    add_options(p, TableOptions)
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                   help=f"local engine: the feature cache training uses (default: "
                        f"{DEFAULT_CACHE_DIR}); the Ray engine keeps none")  # fmt: skip
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _train_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.config import TrainConfig
    from pipeline.train import TrainOptions

    p.add_argument("data_dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    add_options(p, TrainConfig)
    add_options(p, TrainOptions)
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                   help=f"feature cache folder (default: {DEFAULT_CACHE_DIR})")  # fmt: skip
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _workers(text: str) -> int | str:
    """``--workers``: a number of processes, or ``auto`` (the CPUs this process may use)."""
    from service.settings import MAX_WORKERS

    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a number from 1 to {MAX_WORKERS} nor 'auto'"
        )
    return count


def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.train import TrainOptions

    p.add_argument("model_dir", type=Path)
    p.add_argument("data_dir", type=Path)
    p.add_argument("--json", action="store_true")
    add_options(p, TrainOptions, only=("jobs", "max_seconds"))


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.train import TrainOptions

    p.add_argument("model_dir", type=Path)
    p.add_argument("clips", type=Path, nargs="+",
                   help="audio files, or folders of them; - reads one from stdin")  # fmt: skip
    p.add_argument("--json", action="store_true")
    add_options(p, TrainOptions, only=("max_seconds",))


def _timeline_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.timeline.config import TimelineConfig
    from pipeline.timeline.recording import DEFAULT_MAX_TIMELINE_S

    p.add_argument("model_dir", type=Path)
    p.add_argument("file", type=Path, help="the recording; - reads it from stdin")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print segments and totals as JSON")
    out.add_argument("--rttm", action="store_true", help="print RTTM lines (NIST's format)")
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_TIMELINE_S,
                   help="longest recording accepted, in seconds")  # fmt: skip
    add_options(p, TimelineConfig)


def _demo_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", type=Path)
    p.add_argument("--clips", type=int, default=40, help="clips per voice")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--stranger",
        action="store_true",
        help="write only the third voice, Stranger (an unknown speaker)",
    )


def _convert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", type=Path)
    p.add_argument("--out", type=Path, help="where to write it (default: in place)")


def _enrol_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", type=Path, help="the bundle to start from")
    p.add_argument("name", nargs="?", help="the new (or a known) speaker's name")
    p.add_argument("clips", type=Path, nargs="*", help="their recordings: files or folders")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    p.add_argument("--store", type=Path,
                   help="also learn every voice of a speaker store (<speaker>/<clip>), as "
                        "POST /train does: the store replaces the voices the model learnt from "
                        "it before")  # fmt: skip
    p.add_argument("--forget", action="append", default=[], metavar="NAME",
                   help="leave this speaker of the model out (repeatable)")  # fmt: skip
    p.add_argument("--name", dest="model_name", help="model name (default: the --out folder's)")
    p.add_argument("--jobs", type=int, help="feature extraction processes (default: all cores)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                   help=f"feature cache folder (default: {DEFAULT_CACHE_DIR})")  # fmt: skip
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--progress-file", type=Path, help=argparse.SUPPRESS)  # for POST /train
    # for POST /train, which trains on a snapshot of its store: the store, for the report
    p.add_argument("--store-source", type=Path, help=argparse.SUPPRESS)
    # for POST /train: the process ends itself after this many seconds, whoever is left to
    # stop it (a server killed while its job ran is not)
    p.add_argument("--time-limit", type=float, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    from service.settings import SERVE_OPTIONS, Settings

    kinds: dict[str, Callable[[str], Any]] = {
        "model_dir": Path, "host": str, "port": int, "workers": _workers, "data_dir": Path
    }  # fmt: skip
    for name, flag in SERVE_OPTIONS.items():
        p.add_argument(flag, dest=name, type=kinds[name],
                       help=Settings.model_fields[name].description)  # fmt: skip


DESCRIPTION = (
    "Learn voices from a folder of recordings (one subfolder per speaker), then say which known "
    "voice speaks in a clip, a recording or a live stream. 'voiceid COMMAND --help' gives a "
    "command's options."
)
# command -> (its help, the function that adds its arguments)
PARSERS: dict[str, tuple[str, Any]] = {
    "features": ("extract DATA/<speaker>/* into a Parquet feature table", _features_arguments),
    "train": (
        "train a model from DATA_DIR/<speaker>/*.wav, or from a feature table",
        _train_arguments,
    ),
    "evaluate": ("score a model on DATA_DIR/<speaker>/*", _evaluate_arguments),
    "predict": ("name the speaker of each clip", _predict_arguments),
    "timeline": ("say who spoke when in a recording", _timeline_arguments),
    "demo-data": ("write the synthetic Steve and David 'Hello' voices", _demo_data_arguments),
    "convert": ("upgrade a bundle of an older format to this one", _convert_arguments),
    "enrol": (
        "teach a model a new voice from a few clips, without its old recordings",
        _enrol_arguments,
    ),
    "serve": ("serve a model over HTTP (flags override VOICEID_*)", _serve_arguments),
}


def _build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of ``command`` alone (of none when it is not a command:
    the overview lists them), or of every command when None."""
    return _build_parsers(command)[0]


def _build_parsers(
    command: str | None = None,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """:func:`_build_parser`'s parser, and each command's own."""
    parser = argparse.ArgumentParser(prog="voiceid", description=DESCRIPTION)
    parser.add_argument("--version", action="version",
                        version=f"voiceid {metadata.version('voiceid')}")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name, (help_text, add_arguments) in PARSERS.items():
        commands[name] = p = sub.add_parser(name, help=help_text)
        if command in (None, name):
            add_arguments(p)
    return parser, commands


def _parse(argv: list[str], command: str) -> argparse.Namespace:
    """``argv`` parsed; an argument the command does not take exits 2 with the command's own
    usage (not the overview's) and, for a misspelled option, the option it resembles."""
    parser, commands = _build_parsers(command)
    if command:
        _refuse_files_read_as_options(commands[command], argv[1:])
    elif argv and not argv[0].startswith("-"):
        close = difflib.get_close_matches(argv[0], PARSERS, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        parser.error(f"no command {argv[0]!r}{hint} (the commands are {', '.join(PARSERS)})")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        p = commands[args.command]
        options = list(p._option_string_actions)  # argparse lists its options nowhere public
        close = [difflib.get_close_matches(arg.split("=")[0], options, n=1)
                 for arg in unknown if arg.startswith("-")]  # fmt: skip
        hint = next((f"; did you mean {match[0]}?" for match in close if match), "")
        p.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    return args


def _refuse_files_read_as_options(p: argparse.ArgumentParser, args: list[str]) -> None:
    """Exit 2 for a file named like an option (``-take.wav``) before ``--``: argparse would read
    it as one, then say only that an argument is missing."""
    for arg in args[: args.index("--")] if "--" in args else args:
        if arg.startswith("-") and arg not in p._option_string_actions and os.path.lexists(arg):
            p.error(f"the file {arg!r} reads as an option: give it as ./{arg}, or after --")


def _print_summary(summary: TableSummary) -> None:
    print(
        f"wrote {summary.out}: {summary.files} files, {len(summary.skipped)} skipped, "
        f"{summary.degraded} degraded copies (fmax {summary.cfg.fmax:g} Hz)"
    )
    for path, error in summary.skipped:
        print(f"  skipped {path}: {error}")


def _cmd_features(args: argparse.Namespace) -> int:
    from pipeline.table import TableOptions, write_feature_table

    # The default cache is training's; only the local engine keeps one.
    use_cache = args.engine == "local" and not args.no_cache
    opts = from_options(TableOptions, args, cache_dir=args.cache_dir if use_cache else None,
                        progress=sys.stderr.isatty())  # fmt: skip
    summary = write_feature_table(args.data, args.out, opts)
    if args.json:
        skipped = [{"file": path, "error": error} for path, error in summary.skipped]
        print(json.dumps({"out": str(summary.out), "files": summary.files, "skipped": skipped,
                          "degraded": summary.degraded,
                          "feature_config": summary.cfg.to_dict()}, indent=2))  # fmt: skip
    else:
        _print_summary(summary)
    return 0


def _layers(report: dict[str, Any]) -> str:
    """``60-12-12``: a training report's inputs, hidden units and outputs."""
    return "-".join(map(str, report["architecture"]))


def _cmd_train(args: argparse.Namespace) -> int:
    require_training_stack("voiceid train")
    from pipeline.config import TrainConfig
    from pipeline.train import TrainOptions, train

    opts = from_options(
        TrainOptions, args, train=from_options(TrainConfig, args),
        cache_dir=None if args.no_cache else args.cache_dir, progress=sys.stderr.isatty(),
    )  # fmt: skip
    report = train(args.data_dir, args.out, opts)
    if args.json:
        print(json.dumps(report["metrics"] | {"files": report["files"],
                                              "skipped": report["skipped"]}, indent=2))  # fmt: skip
        return 0
    files, m = report["files"], report["metrics"]
    print(f"wrote {args.out}  ({len(report['labels'])} speakers: {', '.join(report['labels'])})")
    print(f"clips: {files['used']} used, {files['skipped']} skipped, {files['decoded']} decoded")
    for item in report["skipped"]:
        print(f"  skipped {item['file']}: {item['error']}")
    speakers = len(report["labels"])
    width = "pinned by --hidden" if args.hidden is not None else f"chosen for {speakers} speakers"
    print(f"network: {_layers(report)} (hidden width {width})")
    print(
        f"epochs: {report['epochs_run']} (best {report['best_epoch'] + 1}), "
        f"train accuracy {m['train_accuracy']:.4f}, validation accuracy {m['val_accuracy']:.4f}"
    )
    for key in ("test_accuracy", "false_accept_rate", "false_reject_rate", "open_set_auroc"):
        if key in m:
            print(f"{key.replace('_', ' ')}: {m[key]:.4f}")
    print(f"time: {report['timing_s']['total']:.1f} s")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.bundle import load_bundle
    from pipeline.evaluate import evaluate_folder

    bundle = load_bundle(args.model_dir)
    report = evaluate_folder(args.data_dir, bundle, max_seconds=args.max_seconds, jobs=args.jobs)
    for warning in report["warnings"]:
        print(f"voiceid evaluate: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    _print_answers(report)
    for label, row in report["per_speaker"].items():
        print(
            f"  {label:>20}: precision {row['precision']:.3f} recall {row['recall']:.3f} "
            f"n={row['count']}"
        )
    unknown = report["unknown_speakers"]
    if unknown["n"]:
        print(
            f"unknown speakers: {unknown['n']} clips, false accept rate "
            f"{unknown['false_accept_rate']:.4f}"
        )
    if report["open_set_auroc"] is not None:
        print(f"open-set AUROC (distance): {report['open_set_auroc']:.4f}")
    _print_conditions(report["conditions"])
    for item in report["skipped"]:
        print(f"  skipped {item['file']}: {item['error']}")
    return 0


STDIN = Path("-")  # a clip or recording read from standard input (a pipe or a redirect)
WEB_ADDRESS = ("http:/", "https:/")  # how a URL reads once Path has folded its "//"


def _readable(path: Path) -> Path:
    """The path to read ``path`` from: standard input's for ``-``."""
    return Path("/dev/stdin") if path == STDIN else path


def _not_found(path: Path, reason: str) -> str:
    """Why ``path`` cannot be read; for a web address, that voiceid reads files."""
    if str(path).startswith(WEB_ADDRESS) and not path.exists():
        return f"{reason}: voiceid reads files, not web addresses: download it first (curl -O)"
    return reason


def _no_audio_file() -> str:
    """What a folder given as clips lacks, and the endings of the files it could hold."""
    from pipeline.dataset import AUDIO_EXTENSIONS

    return f"no audio file: expected files ending in one of {', '.join(sorted(AUDIO_EXTENSIONS))}"


def _clips_to_predict(paths: Sequence[Path]) -> list[tuple[Path, str | None]]:
    """The clips ``voiceid predict`` answers, in order, each with why it cannot be read (None
    when it may be): each file given, and the audio files anywhere in each folder given, sorted,
    as a speaker folder is read (``pipeline.dataset.folder_recordings``); a folder holding none
    is one line saying so."""
    from pipeline.dataset import folder_recordings

    found: list[tuple[Path, str | None]] = []
    for path in paths:
        if path == STDIN or not path.is_dir():
            found.append((path, None))
            continue
        inside = folder_recordings(path, "")
        if not inside:
            found.append((path, f"is a folder holding {_no_audio_file()}"))
        found += [(r.path, r.problem) for r in inside]
    return found


def _clip_error(exc: AudioError, path: Path | None = None) -> str:
    """Why a clip cannot be used (for a file, the system's words beside its name), and for a
    clip too long, the option that admits it."""
    if isinstance(exc, ClipTooLongError):
        return f"{exc}: raise the limit with --max-seconds"
    if isinstance(exc, UnreadableClipError):
        return _not_found(path, exc.reason) if path is not None else exc.reason
    return str(exc)


def _print_answers(report: dict[str, Any]) -> None:
    """What the service would answer for the clips of known speakers, then the top label's
    accuracy; n/a for none."""
    n, answers = report["n"], report["answers"]
    if not n:
        print("named right n/a: no clips of the model's speakers")
        return
    shares = [
        f"{what.replace('_', ' ')} {count / n:.4f} ({count})" for what, count in answers.items()
    ]
    print(f"{', '.join(shares)} of {n} clips of known speakers")
    print(f"accuracy {report['accuracy']:.4f} (top label, whether or not answered unknown)")


def _answer(result: dict[str, Any]) -> str:
    """One clip's answer: the speaker and its score (for a runner-up named where the top voice
    is far, which voice scored higher), or unknown, the closest voice, why (for a poor
    recording, what is wrong with it) and what would help."""
    from pipeline.predict import reason_in_words

    why = result["unknown_reason"]
    closest = max(result["scores"], key=result["scores"].get)
    if why is None:
        named = f"{result['speaker']} ({result['confidence']:.3f})"
        if result["confidence"] >= result["scores"][closest]:
            return named
        return (f"{named}: among {result['speaker']}'s recordings, far from those of {closest}, "
                f"who scored {result['scores'][closest]:.3f}")  # fmt: skip
    score = f"{result['confidence']:.3f}, closest {closest}"
    cause = result.get("unknown_cause")
    words = reason_in_words(why) + (f" ({cause['problem']})" if cause else "")
    advice = cause["advice"] if cause else result.get("advice")
    return f"{result['speaker']} ({score}): {words}" + (f"; {advice}" if advice else "")


def _print_conditions(conditions: dict[str, dict[str, float | int | None]]) -> None:
    """One line per recording condition met: coverage, precision, FRR and its poor recordings,
    and the false accepts of unknown speakers."""

    def shown(value: float | int | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    print("by recording condition:")
    for name, row in conditions.items():
        if row["n"] or row["n_unknown_speakers"]:
            print(
                f"  {name:>12}: n={row['n']} named {shown(row['coverage'])} precision "
                f"{shown(row['named_precision'])} FRR {shown(row['false_reject_rate'])} "
                f"(poor recording {shown(row['poor_recording'])}); unknown speakers "
                f"n={row['n_unknown_speakers']} FAR {shown(row['false_accept_rate'])}"
            )


def _cmd_predict(args: argparse.Namespace) -> int:
    from pipeline.bundle import load_bundle
    from pipeline.dataset import printable
    from pipeline.predict import predict_clip

    bundle = load_bundle(args.model_dir)
    results: list[dict[str, Any]] = []
    for path, problem in _clips_to_predict(args.clips):
        if problem is not None:
            results.append({"file": printable(path), "error": problem})
            continue
        try:
            pred, _ = predict_clip(bundle, _readable(path), max_seconds=args.max_seconds)
        except AudioError as exc:
            results.append({"file": printable(path), "error": _clip_error(exc, path)})
            continue
        results.append({"file": printable(path), "speaker": pred.speaker,
                        "confidence": pred.confidence, "scores": pred.scores,
                        "unknown": pred.unknown, "unknown_reason": pred.reason,
                        "unknown_cause": pred.cause.to_dict() if pred.cause else None,
                        "advice": pred.advice,
                        "quality": pred.quality.to_dict() if pred.quality else None,
                        "issues": [i.to_dict() for i in pred.issues]})  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"{r['file']}: error: {r['error']}")
            else:
                print(f"{r['file']}: {_answer(r)}")
    return 1 if any("error" in r for r in results) else 0


def _segment_fields(s: Segment) -> dict[str, Any]:
    return {"start": s.start, "end": s.end, "speaker": s.speaker, "confidence": s.confidence,
            "unknown": s.unknown, "unknown_reason": s.reason}  # fmt: skip


def _cmd_timeline(args: argparse.Namespace) -> int:
    from pipeline.bundle import load_bundle
    from pipeline.errors import DatasetError
    from pipeline.predict import reason_in_words
    from pipeline.timeline.config import TimelineConfig
    from pipeline.timeline.recording import timeline_of_clip
    from pipeline.timeline.turns import to_rttm

    bundle = load_bundle(args.model_dir)
    tcfg = from_options(TimelineConfig, args)
    try:
        found = timeline_of_clip(bundle, _readable(args.file), tcfg, max_seconds=args.max_seconds)
    except AudioError as exc:  # the one file's name first, as predict prints it before its line
        raise DatasetError(f"{str(args.file)!r}: {_clip_error(exc)}") from None
    except OSError as exc:
        why = _not_found(args.file, exc.strerror or str(exc))
        raise DatasetError(f"cannot read {str(args.file)!r}: {why}") from None
    if args.rttm:
        print(to_rttm(found.segments, "stdin" if args.file == STDIN else args.file.stem), end="")
    elif args.json:
        # The fields and names of POST /timeline's answer, less what only a server knows.
        segments = [_segment_fields(s) for s in found.segments]
        print(json.dumps({"segments": segments, "totals": found.totals,
                          "duration_s": found.duration_s, "window_s": found.window_s,
                          "hop_s": found.hop_s}, indent=2))  # fmt: skip
    else:
        for s in found.segments:
            why = f": {reason_in_words(s.reason)}" if s.reason else ""
            print(f"{s.start:8.2f} {s.end:8.2f}  {s.speaker} ({s.confidence:.3f}){why}")
        spoken = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in found.totals.items())
        print(f"{found.duration_s:.1f} s: {spoken or 'nobody speaks'}")
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from pipeline.demo.synth import STRANGER, write_demo_data

    voices = [STRANGER] if args.stranger else None
    written = write_demo_data(args.out_dir, clips_per_voice=args.clips, seed=args.seed,
                              voices=voices)  # fmt: skip
    for voice, paths in written.items():
        print(f"{voice}: {len(paths)} clips in {args.out_dir / voice}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    require_training_stack("voiceid convert", ("keras", "tensorflow"))
    from pipeline.convert import convert_bundle

    print(f"wrote {convert_bundle(args.model_dir, args.out)}")
    return 0


def _folder_clips(folder: Path, speaker: str) -> list[Recording]:
    """``speaker``'s recordings anywhere in ``folder``, sorted, read as a data folder's speaker
    folder is (``pipeline.dataset.folder_recordings``: what cannot be read is skipped, with
    why); a folder with none is an error, as a missing clip is, not a speaker taught nothing."""
    from pipeline.dataset import folder_recordings
    from pipeline.errors import DatasetError

    found = folder_recordings(folder, speaker)
    if not found:
        raise DatasetError(f"folder {str(folder)!r} holds {_no_audio_file()}")
    return [dataclasses.replace(r, path=_absolute(r.path)) for r in found]


def _absolute(path: Path) -> Path:
    """``path`` without links, as a file given twice is known by; a link that leads nowhere or
    loops, which has no such path, by its folder's and its own name."""
    return path.resolve() if path.is_file() else path.parent.resolve() / path.name


def _new_clips(args: argparse.Namespace) -> list[Recording]:
    """The recordings ``voiceid enrol`` learns: NAME's CLIPs (files, or the audio files in
    folders) and the store's."""
    from pipeline.dataset import Recording
    from pipeline.enrol import store_recordings
    from pipeline.errors import DatasetError
    from pipeline.names import check_speaker_name

    if args.name is None and args.store is None and not args.forget:
        raise ParameterError("name a speaker and their clips, give --store, or --forget a speaker")
    if args.name is not None and not args.clips:
        raise ParameterError(f"no clips given for {args.name!r}")
    new = []
    for clip in args.clips:
        if clip.is_dir():
            new += _folder_clips(clip, check_speaker_name(args.name))
        elif clip.is_file():
            new.append(Recording(clip.resolve(), check_speaker_name(args.name)))
        elif clip.exists():  # a device or a pipe: training reads a clip more than once
            raise DatasetError(f"clip {str(clip)!r} is neither a file nor a folder")
        elif clip.is_symlink():  # it is there, so 'does not exist' would mislead
            raise DatasetError(f"clip {str(clip)!r} is a link that leads to no file")
        else:
            raise DatasetError(f"clip {str(clip)!r} does not exist")
    if args.store is not None:
        if not args.store.is_dir():
            raise DatasetError(f"speaker store {str(args.store)!r} is not a folder")
        new += store_recordings(args.store.resolve())
    return new


def _cmd_enrol(args: argparse.Namespace) -> int:
    if args.time_limit is not None:
        _end_after(args.time_limit)
    require_training_stack("voiceid enrol")
    from pipeline.enrol import EnrolOptions, ProgressFile, enrol

    new = _new_clips(args)
    opts = EnrolOptions(
        from_store=args.store is not None, forget=tuple(args.forget),
        root=(args.store or Path.cwd()).resolve(), source=args.store_source, jobs=args.jobs,
        cache_dir=None if args.no_cache else args.cache_dir, name=args.model_name,
    )  # fmt: skip
    if args.progress_file is not None:
        opts = dataclasses.replace(opts, progress=ProgressFile(args.progress_file))
    report = enrol(args.model_dir, args.out, new, opts)
    if args.json:
        print(json.dumps(report["metrics"] | {"labels": report["labels"],
                                              "skipped": report["skipped"]}, indent=2))  # fmt: skip
        return 0
    skipped = report["skipped"]
    print(f"wrote {args.out}  ({len(report['labels'])} speakers: {', '.join(report['labels'])})")
    print(f"new clips: {len(new) - len(skipped)} used, {len(skipped)} skipped")
    for item in skipped:
        print(f"  skipped {item['file']}: {item['error']}")
    m = report["metrics"]
    print(f"network: {_layers(report)}")
    print(f"train accuracy {m['train_accuracy']:.4f}, validation accuracy {m['val_accuracy']:.4f}")
    print(f"time: {report['timing_s']['total']:.1f} s")
    return 0


def _end_after(seconds: float) -> None:
    """Have the kernel end this process ``seconds`` from now (``SIGALRM``, whose default is to
    terminate; nothing here handles it), however stuck it is then."""
    if not seconds > 0:  # NaN too
        raise ParameterError(f"--time-limit={seconds!r} must be a positive number of seconds")
    signal.alarm(math.ceil(seconds))


def _cmd_serve(args: argparse.Namespace) -> int:
    from service.main import serve

    serve(model_dir=args.model_dir, host=args.host, port=args.port, workers=args.workers,
          data_dir=args.data_dir)  # fmt: skip
    return 0


COMMANDS = {"features": _cmd_features, "train": _cmd_train, "evaluate": _cmd_evaluate,
            "predict": _cmd_predict, "timeline": _cmd_timeline, "demo-data": _cmd_demo_data,
            "convert": _cmd_convert, "enrol": _cmd_enrol, "serve": _cmd_serve}  # fmt: skip


def _warning_lines(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` that gives each warning once, on one line as errors are given,
    not with the line of code that raised it."""
    shown: set[str] = set()

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        if str(message) not in shown:
            shown.add(str(message))
            print(f"voiceid {command}: warning: {message}", file=sys.stderr)

    return show


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, a supervisor), ended as Ctrl-C ends a command."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


@contextlib.contextmanager
def _stopped_by_sigterm(command: str) -> Iterator[None]:
    """SIGTERM stops the command as Ctrl-C does. Without a handler, a command that is a
    container's PID 1 ignores it, and docker kills it after its grace period, without a word.
    ``serve`` is left to uvicorn, which shuts down gracefully on it."""
    if command == "serve" or threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in PARSERS else ""
    try:
        with warnings.catch_warnings(), _stopped_by_sigterm(command):
            warnings.showwarning = _warning_lines(command)
            args = _parse(argv, command)
            return COMMANDS[args.command](args)
    except VoiceIdError as exc:
        print(f"voiceid {command}: error: {exc}", file=sys.stderr)
        return 2
    except _Terminated:
        print(f"voiceid {command}: stopped (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        # Ctrl-C: what it stopped was never put in place (bundles, tables and caches are
        # written aside and renamed), so one line says so; the status is a shell's for SIGINT.
        print(f"voiceid {command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


def run() -> None:
    """The ``voiceid`` console script: ``main``, then exit without interpreter teardown.

    Once TensorFlow is loaded, an ordinary exit spends a noticeable while tearing it down after
    all the work is done and written; everything has been flushed and closed by then.
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped reading (``voiceid timeline ... | head``): it has what it wanted,
        # and a traceback would say nothing. Exit as a process that SIGPIPE ended does.
        code = 128 + signal.SIGPIPE
    sys.stderr.flush()
    restore_stderr()  # the last lines, should TensorFlow still be loading in a thread
    os._exit(code)


if __name__ == "__main__":
    run()
