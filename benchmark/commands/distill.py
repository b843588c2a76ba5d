"""``python -m benchmark distill``: train a student from a teacher's outputs.

The command parses its own options (:mod:`benchmark.distill.cli`): the
benchmark's parser lists it, and its arguments pass through unparsed.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    r"""Add ``distill`` to the sub-commands ``sub`` of the benchmark's parser (for the command list only)."""
    sub.add_parser(
        "distill",
        help="train a student from a teacher's outputs (see: python -m benchmark distill --help)",
        add_help=False,
    )


def run(args: argparse.Namespace) -> int:
    r"""Distil with the options in ``args.argv`` (the words after ``distill``)."""
    from benchmark.distill.cli import main

    return main(args.argv)
