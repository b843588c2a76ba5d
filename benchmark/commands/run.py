"""``python -m benchmark run``: options checked, cells predicted, then scored."""

from __future__ import annotations

import argparse
import os
import sys

from benchmark import analyses, run_checks
from benchmark.commands.options import add_ci_unit, results_folder
from benchmark.run_checks import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    count_or_all,
    non_negative_float,
    positive_float,
    positive_int,
    user_errors,
)


def add_parser(sub) -> None:
    r"""Add ``run`` to the sub-commands ``sub`` of the benchmark's parser."""
    parser = sub.add_parser(
        "run",
        help="benchmark one or more models and regenerate the docs",
        description="Run models from models.yaml over the registered datasets (default: the embedded demo "
        "replicas) and write versioned result tables to results/.",
    )
    parser.add_argument(
        "--model",
        nargs="+",
        required=True,
        metavar="NAME",
        help="model name(s) from models.yaml; 'all' runs every model whose weights are available",
    )
    parser.add_argument(
        "--dataset", nargs="+", metavar="NAME", help="dataset name(s) from datasets.yaml (default: all)"
    )
    parser.add_argument(
        "--split", nargs="+", metavar="SPLIT", help="evaluation split(s), e.g. test-1 (default: every evaluation split)"
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        default=list(analyses.FAMILIES),
        choices=analyses.FAMILIES,
        metavar="FAMILY",
        help=f"test families to run: {', '.join(analyses.FAMILIES)} (default: all)",
    )
    parser.add_argument(
        "--data",
        choices=("demo", "real", "public"),
        default="demo",
        help="'demo': embedded synthetic replicas (default, no configuration); "
        "'real': the licensed corpora from your audb repositories; "
        "'public': the public corpora of audb-public (datasets-public.yaml)",
    )
    parser.add_argument(
        "--repository",
        action="append",
        default=[],
        metavar="NAME=HOST[:BACKEND]",
        help="audb repository for --data real/public (repeatable, searched in order; backend default "
        "file-system); without it, audb's configured repositories (~/.config/audb.yaml, else audb-public)",
    )
    parser.add_argument("--models", metavar="PATH", help="model registry file (default: models.yaml)")
    parser.add_argument("--datasets", metavar="PATH", help="dataset registry file (default: datasets.yaml)")
    add_analysis_options(parser)
    add_output_options(parser)
    add_scaling_options(parser.add_argument_group("scaling (docs/scaling.md)"))


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    r"""The options of the analyses: conditions, babble, subsets, bootstraps, seed, interval unit."""
    parser.add_argument(
        "--conditions", nargs="+", metavar="NAME", help="robustness conditions from conditions.yaml (default: all)"
    )
    parser.add_argument(
        "--babble",
        metavar="SPEC",
        help="babble talkers of the robustness analysis: a folder, list file or glob of speech "
        "recordings, or 'demo' (default: the demo pool with --data demo, none with --data real: "
        "the babble conditions are then left out and the run says so)",
    )
    parser.add_argument(
        "--max-files",
        type=count_or_all,
        default=200,
        metavar="N",
        help="robustness: seeded subset of N files per split (default: 200; 0 = all)",
    )
    parser.add_argument(
        "--bootstrap",
        type=positive_int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for confidence intervals (default: 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of bootstraps, subsets and perturbations")
    add_ci_unit(parser)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    r"""Where the results go, the worker threads, and what is printed and regenerated."""
    parser.add_argument(
        "--results",
        metavar="DIR",
        help="write result tables to DIR instead of results/ (needed for settings other than "
        "the folder's, e.g. another --seed, --bootstrap or --max-files; docs/ is not regenerated)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=2, help="threads for audio reading and inference (default: 2)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate docs/ at the end")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_scaling_options(scale) -> None:
    r"""The executor options (``docs/scaling.md``), in their own argument group ``scale``."""
    scale.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="'local': predict in this process (default); 'ray': on Ray actors that hold a loaded "
        "model (pip install 'ser-benchmark[ray]')",
    )
    scale.add_argument(
        "--processes",
        type=processes_option,
        default=os.environ.get("SER_BENCHMARK_PROCESSES", "auto"),
        metavar="N|auto",
        help="local: worker processes, each with its own copy of the model; 1 predicts in this process "
        "(default: $SER_BENCHMARK_PROCESSES, else auto: one per core, at most 4; 1 for a model on a GPU)",
    )
    scale.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to join: 'auto', HOST:PORT or ray://HOST:PORT (default: start one on this machine)",
    )
    scale.add_argument(
        "--ray-timeout",
        type=positive_float,
        metavar="S",
        help="Ray: seconds to wait for the cluster of --address before giving up "
        "(default: $SER_BENCHMARK_RAY_TIMEOUT, else 30)",
    )
    scale.add_argument(
        "--replicas", type=positive_int, default=1, metavar="N", help="Ray: model replicas (actors) per model"
    )
    scale.add_argument(
        "--gpus-per-replica",
        type=non_negative_float,
        metavar="F",
        help="Ray: GPUs per replica, fractional allowed (default: 1 if the entry's params.device is cuda, else 0)",
    )
    scale.add_argument(
        "--signal-cache-mb",
        type=non_negative_float,
        default=1024,
        metavar="MB",
        help="perturbed signals kept on disk for the next model when several models share the "
        "robustness conditions (default: 1024; 0: perturb again for every model; off for one model)",
    )
    scale.add_argument(
        "--batch-size",
        type=positive_int,
        default=1,
        metavar="N",
        help="files per batch, length-bucketed, for models with batched inference (the transformers "
        "teachers; also with --executor local; default: 1, file by file)",
    )


def processes_option(value: str) -> str | int:
    r"""``--processes``: ``'auto'`` or a whole number of at least 1.

    Examples:
        >>> processes_option("auto"), processes_option("3")
        ('auto', 3)

    """
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is neither 'auto' nor a whole number of at least 1")
    return number


def resolve_processes(value: str | int, entries: list) -> int:
    r"""The worker processes of ``--processes`` (``'auto'``: :func:`benchmark.executors.default_processes`)."""
    if value != "auto":
        return int(value)
    from benchmark.executors import default_processes

    return default_processes(entries)


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

    results_dir = results_folder(args.results)
    registry = Registry.from_file(args.models)
    dataset_registry = load_registry(args.datasets or default_registry(args.data))
    repositories = [parse_repository(r) for r in args.repository] or None
    models = available_models(registry) if args.model == ["all"] else args.model
    run_checks.check_run(
        args, models, registry, dataset_registry, results_dir
    )  # before any work: nothing is written on a mistake
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
    if args.executor == "local":
        scale["processes"] = resolve_processes(args.processes, [registry[m] for m in models])
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
            results_dir=results_dir,
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
        print(f"pass/fail summary: {write_summary(results_dir)}")
    if args.results and not args.no_docs:
        print(f"docs/ not regenerated: the results are in {args.results}, docs/ shows the project's results/")
    elif not args.no_docs:
        try:
            from benchmark import docs

            with timing.phase("docs"):
                docs.build(results_dir)
            print("docs regenerated: docs/results/leaderboard.md")
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
