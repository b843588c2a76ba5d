"""The ``run`` command of the command line (:mod:`benchmark.cli`): options checked, cells predicted, then scored."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmark import run_checks
from benchmark.run_checks import EXIT_FAILURES, EXIT_OK, EXIT_USAGE, user_errors


def available_models(registry) -> list[str]:
    r"""The models of ``registry`` that load here; each other one is named on stderr with its reason."""
    from benchmark.registry import load_model

    names = []
    for name in registry:
        try:
            load_model(name, registry)
            names.append(name)
        except user_errors() as ex:
            print(f"skip {name}: {str(ex).splitlines()[0]}", file=sys.stderr)
    return names


def run(args) -> int:
    r"""The ``run`` command: check the options, predict every cell, score, write results and the summary."""
    from benchmark.data.datasets import default_registry, load_registry, parse_repository
    from benchmark.registry import Registry

    if args.results:
        # every reader and writer of result tables resolves the folder through paths.results_root()
        os.environ["SER_BENCHMARK_RESULTS"] = str(Path(args.results).expanduser().resolve())
    registry = Registry.from_file(args.models)
    dataset_registry = load_registry(args.datasets or default_registry(args.data))
    repositories = [parse_repository(r) for r in args.repository] or None
    models = available_models(registry) if args.model == ["all"] else args.model
    run_checks.check_run(args, models, registry, dataset_registry)  # before any work: nothing is written on a mistake
    options = run_checks.run_options(args)
    timeout = (args.ray_timeout or run_checks.ray_timeout_default()) if args.executor == "ray" else None
    from benchmark.plan import RunSpec
    from benchmark.suite import run_models
    from benchmark.timing import Timing

    spec = RunSpec(
        registry,
        dataset_registry,
        data=args.data,
        repositories=repositories,
        seed=args.seed,
        options=options,
        num_workers=args.workers,
        batch_size=args.batch_size,
        signal_cache_mb=args.signal_cache_mb,
    )
    timing = Timing()
    scale = {"address": args.address, "replicas": args.replicas, "gpus_per_replica": args.gpus_per_replica}
    try:
        reports = run_models(
            models,
            spec,
            datasets=args.dataset,
            splits=args.split,
            tests=args.tests,
            executor=args.executor,
            scale={**scale, "address_timeout": timeout or run_checks.RAY_TIMEOUT},
            progress=not args.no_progress,
            timing=timing,
        )
    except ImportError as ex:
        if args.executor != "ray":
            raise
        print(f"error: {ex}", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    for name, report in reports.items():
        status = max(status, show(name, report))
    from benchmark.report import write_summary

    with timing.phase("report"):
        print(f"pass/fail summary: {write_summary()}")
    if args.results and not args.no_docs:
        print(f"docs/ not regenerated: the results are in {args.results}, docs/ shows the project's results/")
    elif not args.no_docs:
        try:
            from benchmark import docs

            with timing.phase("docs"):
                docs.build()
            print("docs regenerated: docs/leaderboard.md")
        except ImportError:
            pass
    print(timing.line())
    return status


def show(name: str, report) -> int:
    r"""Print what the suite did for one model (a :class:`benchmark.suite.SuiteReport`); its exit status."""
    from tabulate import tabulate

    table = report.frame("correctness")
    print(f"\n{name} (sha256 {report.model_sha256[:12]}) · {report.wall_seconds:.1f} s")
    if len(table):
        view = table[["dataset", "split", "dimension", "n", "ccc", "ccc_ci_low", "ccc_ci_high", "pearson", "mae"]]
        print(tabulate(view, headers="keys", showindex=False, floatfmt=".3f"))
    if report.out_of_range:
        cells = [f"{d}/{s} · {c}" for d, s, c in report.out_of_range]
        print(
            f"{sum(report.out_of_range.values())} prediction(s) far outside 0..1 "
            f"({len(cells)} cell(s): {', '.join(cells[:3])}{', ...' if len(cells) > 3 else ''})"
        )
    if report.skipped_files:
        print(f"{len(report.skipped_files)} file(s) skipped (reasons in skips.csv of the results folder), e.g.:")
        for row in report.skipped_files[:5]:
            print(f"  {row.dataset}/{row.split} [{row.condition}] {row.file}: {row.reason}")
    for failure in report.failures:
        print(f"FAILED {failure}")
    return EXIT_FAILURES if report.failures else EXIT_OK
