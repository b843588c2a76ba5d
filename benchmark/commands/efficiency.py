"""``python -m benchmark efficiency``: parameters, ONNX size, ms per 5 s clip and peak memory of models."""

from __future__ import annotations

import argparse

from benchmark.run_checks import EXIT_OK, positive_int


def add_parser(sub) -> None:
    r"""Add ``efficiency`` to the sub-commands ``sub`` of the benchmark's parser."""
    eff = sub.add_parser("efficiency", help="measure parameters, ONNX size, ms per 5 s clip, peak memory")
    eff.add_argument(
        "--model", nargs="+", required=True, metavar="NAME", help="model name(s); 'all' for every available one"
    )
    eff.add_argument(
        "--repeats", type=positive_int, default=20, help="timed runs per model (median reported; default: 20)"
    )
    eff.add_argument("--models", metavar="PATH", help="model registry file (default: models.yaml)")


def run(args: argparse.Namespace) -> int:
    r"""Measure the models of ``args.model``, upsert the ``efficiency`` table and print its rows."""
    from tabulate import tabulate

    from benchmark import efficiency
    from benchmark.commands.run import available_models
    from benchmark.registry import Registry

    registry = Registry.from_file(args.models)
    if args.model == ["all"]:
        available = available_models(registry)
        # a teacher without weights here is timed as its architecture (random weights, marked as such)
        names = [n for n in registry if n in available or registry[n].config]
    else:
        names = args.model
    df = efficiency.run(names, registry, repeats=args.repeats)
    print(tabulate(df, headers="keys", showindex=False))
    return EXIT_OK
