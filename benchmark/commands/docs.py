"""``python -m benchmark docs``: regenerate the generated pages of ``docs/`` from the result tables."""

from __future__ import annotations

import argparse
import sys

from benchmark.commands.options import results_folder
from benchmark.run_checks import EXIT_OK


def add_parser(sub) -> None:
    r"""Add ``docs`` to the sub-commands ``sub`` of the benchmark's parser."""
    docs = sub.add_parser("docs", help="regenerate docs/ from results/ (no model runs)")
    docs.add_argument("--full", action="store_true", help="draw every figure (default: only those whose data changed)")
    docs.add_argument(
        "--timing", action="store_true", help="print what was written, drawn and reused, and the time, to stderr"
    )
    docs.add_argument("--results", metavar="DIR", help="result tables to read (default: results/)")
    docs.add_argument("--docs", metavar="DIR", help="folder to write the pages into (default: docs/)")
    docs.add_argument("--models", metavar="PATH", help="model registry file (default: models.yaml)")


def run(args: argparse.Namespace) -> int:
    r"""Regenerate the docs; print every generated file (and, with ``--timing``, what it took)."""
    from benchmark.docs.generate import regenerate

    summary = regenerate(results_folder(args.results), args.docs, args.models, reuse=not args.full)
    for path in summary.files:
        print(path)
    if args.timing:
        print(summary.line(), file=sys.stderr)
    return EXIT_OK
