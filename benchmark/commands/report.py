"""``python -m benchmark report``: judge every test against the thresholds and write the pass/fail summary."""

from __future__ import annotations

import argparse

from benchmark.commands.options import results_folder
from benchmark.run_checks import EXIT_OK


def add_parser(sub) -> None:
    r"""Add ``report`` to the sub-commands ``sub`` of the benchmark's parser."""
    rep = sub.add_parser("report", help="judge every test against thresholds.yaml and write results/summary.csv")
    rep.add_argument("--thresholds", metavar="PATH", help="threshold file (default: thresholds.yaml)")


def run(args: argparse.Namespace) -> int:
    r"""Write ``summary.csv`` into the results folder and print it, best model first."""
    from tabulate import tabulate

    from benchmark import report

    root = results_folder(None)
    thresholds = report.load_thresholds(args.thresholds)
    path = report.write_summary(root, thresholds=thresholds)
    summary = report.summarize(report.evaluate(report.read_tables(root), thresholds))
    view = summary.sort_values(["share_passed", "model"], ascending=[False, True])
    view = view.assign(model_sha256=view["model_sha256"].str[:12])
    print(
        tabulate(
            view[["model", "model_sha256", "tests", "passed", "failed", "undecided", "share_passed"]],
            headers="keys",
            showindex=False,
            floatfmt=".3f",
        )
    )
    print(f"written: {path}")
    return EXIT_OK
