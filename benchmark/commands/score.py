"""``python -m benchmark score``: score the stored predictions again, without a model (:mod:`benchmark.score`)."""

from __future__ import annotations

import argparse

from benchmark.commands.options import add_ci_unit, results_folder
from benchmark.run_checks import EXIT_OK


def add_parser(sub) -> None:
    r"""Add ``score`` to the sub-commands ``sub`` of the benchmark's parser."""
    from benchmark.score import FAMILIES

    score = sub.add_parser(
        "score",
        help="score the stored predictions in results/predictions again (no model run)",
        description="Recompute the intervals of correctness, fairness and consistency from the per-file "
        "predictions stored in results/predictions/ and the gold labels of their splits; point values are kept "
        "as stored, robustness rows are left as they are.",
    )
    score.add_argument(
        "--tests",
        nargs="+",
        default=["correctness", "fairness"],
        choices=FAMILIES,
        metavar="FAMILY",
        help="families to score: correctness, fairness, consistency (default: correctness fairness)",
    )
    score.add_argument("--data", choices=("demo", "real"), default="demo", help="where the splits come from")
    score.add_argument(
        "--repository", action="append", default=[], metavar="NAME=HOST[:BACKEND]", help="audb repository (--data real)"
    )
    score.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (default: 1000)")
    score.add_argument("--seed", type=int, default=0, help="seed of the bootstraps (default: 0)")
    score.add_argument("--results", metavar="DIR", help="results folder to score (default: results/)")
    score.add_argument("--models", metavar="PATH", help="model registry file (default: models.yaml)")
    score.add_argument("--datasets", metavar="PATH", help="dataset registry file (default: datasets.yaml)")
    add_ci_unit(score)


def run(args: argparse.Namespace) -> int:
    r"""Score the stored predictions with parsed ``args``; writes the pass/fail summary too."""
    from benchmark import report
    from benchmark.data import datasets as dsets
    from benchmark.registry import Registry
    from benchmark.score import score_stored

    results_dir = results_folder(args.results)
    written = score_stored(
        tests=args.tests,
        data=args.data,
        repositories=[dsets.parse_repository(r) for r in args.repository] or None,
        registry=Registry.from_file(args.models),
        dataset_registry=dsets.load_registry(args.datasets),
        seed=args.seed,
        options={"bootstrap": args.bootstrap, "ci_unit": args.ci_unit},
        results_dir=results_dir,
    )
    print("rows scored: " + (", ".join(f"{t} {n}" for t, n in sorted(written.items())) or "none"))
    print(f"pass/fail summary: {report.write_summary(results_dir)}")
    return EXIT_OK
