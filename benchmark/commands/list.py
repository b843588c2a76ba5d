"""``python -m benchmark list``: the registered models and datasets."""

from __future__ import annotations

import argparse

from benchmark.run_checks import EXIT_OK


def add_parser(sub) -> None:
    r"""Add ``list`` to the sub-commands ``sub`` of the benchmark's parser."""
    ls = sub.add_parser("list", help="list registered models and datasets")
    ls.add_argument("--models", metavar="PATH", help="model registry file (default: models.yaml)")
    ls.add_argument("--datasets", metavar="PATH", help="dataset registry file (default: datasets.yaml)")


def run(args: argparse.Namespace) -> int:
    r"""Print one table of the models and one of the datasets."""
    from tabulate import tabulate

    from benchmark.data.datasets import load_registry
    from benchmark.registry import Registry

    registry = Registry.from_file(args.models)
    rows = [
        (e.name, e.role, e.kind, ",".join(d[0].upper() for d in e.dimensions), e.description[:70])
        for e in registry.values()
    ]
    print(tabulate(rows, headers=["model", "role", "kind", "dims", "description"]))
    print()
    drows = [
        (d.name, d.version, ", ".join(d.splits), d.demo["name"] if d.demo else "none (repository only)")
        for d in load_registry(args.datasets).values()
    ]
    print(tabulate(drows, headers=["dataset", "version", "splits", "demo replica"]))
    return EXIT_OK
