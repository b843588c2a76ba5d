"""``python -m benchmark demo``: build and publish the embedded demo corpora."""

from __future__ import annotations

import argparse

from benchmark.run_checks import EXIT_OK


def add_parser(sub) -> None:
    r"""Add ``demo`` to the sub-commands ``sub`` of the benchmark's parser."""
    sub.add_parser("demo", help="build and publish the embedded demo corpora (done automatically on first use)")


def run(args: argparse.Namespace) -> int:
    r"""Publish the demo corpora (nothing is rebuilt if they are) and say where they are."""
    from benchmark.data import demo

    repo = demo.repository()
    print(f"demo corpora published in {repo.host}/{repo.name}")
    return EXIT_OK
