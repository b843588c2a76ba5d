"""Command line: ``python -m benchmark COMMAND``.

Commands: ``run`` (benchmark models), ``list`` (registered models and
datasets), ``efficiency`` (speed/size figures), ``distill`` (train a
student from a teacher), ``report`` (pass/fail against thresholds),
``docs`` (regenerate the leaderboard), ``score`` (re-score the stored
predictions, no model run), ``demo`` (build the embedded demo
corpora), ``import-dataset`` (a folder of audio and a CSV as an audb dataset),
``import-corpus`` (an official release folder as an audb dataset).

Each command is one module of :mod:`benchmark.commands`; this module is
the single entry point: it assembles their parsers, dispatches, and turns
user errors and Ctrl-C into exit codes.
"""

from __future__ import annotations

import argparse
import sys
import typing

from benchmark import interrupts
from benchmark.commands import (
    demo,
    distill,
    docs,
    efficiency,
    import_corpus,
    import_dataset,
    report,
    run,
    score,
)
from benchmark.commands import list as list_command
from benchmark.run_checks import (
    EXIT_FAILURES,  # noqa: F401  (the exit codes are the command line's: callers read them here)
    EXIT_INTERRUPTED,
    EXIT_OK,  # noqa: F401
    EXIT_USAGE,
    user_errors,
)

COMMANDS = {
    "run": run,
    "list": list_command,
    "efficiency": efficiency,
    "score": score,
    "report": report,
    "docs": docs,
    "demo": demo,
    "import-dataset": import_dataset,
    "import-corpus": import_corpus,
    "distill": distill,
}
"""Command name → its module (``add_parser(subparsers)``, ``run(args) -> int``), in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    r"""The parser of ``python -m benchmark``: one sub-command per module of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="Reproducible benchmark for dimensional speech emotion recognition (arousal, dominance, valence).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""Run a command; its exit code (0 ok, 1 failed tests, 2 usage error, 130 interrupted)."""
    try:
        with interrupts.handled():
            return _main(argv)
    except KeyboardInterrupt:
        # everything finished is already on disk: result rows per family, predictions per chunk
        print(
            "interrupted: what finished is kept (results and prediction cache); run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _main(argv: typing.Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["distill"]:  # distill parses its own options
        return distill.run(argparse.Namespace(command="distill", argv=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except user_errors() as ex:
        message = ex.args[0] if isinstance(ex, KeyError) and ex.args else str(ex)  # str(KeyError) adds quotes
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
