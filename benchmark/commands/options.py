"""Options that several commands share."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_ci_unit(parser: argparse.ArgumentParser) -> None:
    r"""The ``--ci-unit`` option of the commands that compute intervals (``run``, ``score``)."""
    parser.add_argument(
        "--ci-unit",
        choices=("speaker", "file"),
        default="speaker",
        help="what the bootstraps resample: whole speakers where a split has them (default), or single files "
        "everywhere, as most published intervals do (narrower where files cluster by speaker)",
    )


def add_publish_options(parser: argparse.ArgumentParser) -> None:
    r"""Where an import publishes: ``--repository`` and ``--datasets`` (``import-dataset``, ``import-corpus``)."""
    parser.add_argument(
        "--repository",
        metavar="NAME=HOST",
        help="file-system audb repository to publish to (created if missing; default: 'local' in the "
        "benchmark's cache folder)",
    )
    parser.add_argument(
        "--datasets",
        default="datasets-own.yaml",
        metavar="PATH",
        help="registry file to write the entry into (default: datasets-own.yaml; the project's "
        "datasets.yaml is changed only if you name it)",
    )


def results_folder(option: str | None) -> Path:
    r"""The results folder of a ``--results`` option: ``DIR`` as given, else :func:`benchmark.paths.results_root`."""
    from benchmark.paths import results_root

    return Path(option).expanduser().resolve() if option else results_root()
