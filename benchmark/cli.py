"""Command line: ``python -m benchmark COMMAND``.

Commands: ``run`` (benchmark models), ``list`` (registered models and
datasets), ``efficiency`` (speed/size figures), ``distill`` (train a
student from a teacher), ``report`` (pass/fail against thresholds),
``docs`` (regenerate the leaderboard), ``score`` (re-score the stored
predictions, no model run), ``demo`` (build the embedded demo
corpora), ``import-dataset`` (a folder of audio and a CSV as an audb dataset),
``import-corpus`` (an official release folder as an audb dataset).
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

from benchmark import analyses, cli_import
from benchmark.run_checks import (
    EXIT_FAILURES,  # noqa: F401  (the exit codes are the command line's: callers read them here)
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    count_or_all,
    non_negative_float,
    positive_float,
    positive_int,
    user_errors,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="Reproducible benchmark for dimensional speech emotion recognition (arousal, dominance, valence).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="benchmark one or more models and regenerate the docs",
        description="Run models from models.yaml over the registered datasets (default: the embedded demo "
        "replicas) and write versioned result tables to results/.",
    )
    run.add_argument(
        "--model",
        nargs="+",
        required=True,
        metavar="NAME",
        help="model name(s) from models.yaml; 'all' runs every model whose weights are available",
    )
    run.add_argument("--dataset", nargs="+", metavar="NAME", help="dataset name(s) from datasets.yaml (default: all)")
    run.add_argument(
        "--split", nargs="+", metavar="SPLIT", help="evaluation split(s), e.g. test-1 (default: every evaluation split)"
    )
    run.add_argument(
        "--tests",
        nargs="+",
        default=list(analyses.FAMILIES),
        choices=analyses.FAMILIES,
        metavar="FAMILY",
        help=f"test families to run: {', '.join(analyses.FAMILIES)} (default: all)",
    )
    run.add_argument(
        "--data",
        choices=("demo", "real", "public"),
        default="demo",
        help="'demo': embedded synthetic replicas (default, no configuration); "
        "'real': the licensed corpora from your audb repositories; "
        "'public': the public corpora of audb-public (datasets-public.yaml)",
    )
    run.add_argument(
        "--repository",
        action="append",
        default=[],
        metavar="NAME=HOST[:BACKEND]",
        help="audb repository for --data real/public (repeatable, searched in order; backend default "
        "file-system); without it, audb's configured repositories (~/.config/audb.yaml, else audb-public)",
    )
    run.add_argument("--models", metavar="PATH", help="model registry file (default: models.yaml)")
    run.add_argument("--datasets", metavar="PATH", help="dataset registry file (default: datasets.yaml)")
    run.add_argument(
        "--conditions", nargs="+", metavar="NAME", help="robustness conditions from conditions.yaml (default: all)"
    )
    run.add_argument(
        "--babble",
        metavar="SPEC",
        help="babble talkers of the robustness analysis: a folder, list file or glob of speech "
        "recordings, or 'demo' (default: the demo pool with --data demo, none with --data real: "
        "the babble conditions are then left out and the run says so)",
    )
    run.add_argument(
        "--max-files",
        type=count_or_all,
        default=200,
        metavar="N",
        help="robustness: seeded subset of N files per split (default: 200; 0 = all)",
    )
    run.add_argument(
        "--bootstrap",
        type=positive_int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for confidence intervals (default: 1000)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of bootstraps, subsets and perturbations")
    add_ci_unit(run)
    run.add_argument(
        "--results",
        metavar="DIR",
        help="write result tables to DIR instead of results/ (needed for settings other than "
        "the folder's, e.g. another --seed, --bootstrap or --max-files; docs/ is not regenerated)",
    )
    run.add_argument(
        "--workers", type=positive_int, default=2, help="threads for audio reading and inference (default: 2)"
    )
    run.add_argument("--no-docs", action="store_true", help="do not regenerate docs/ at the end")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    scale = run.add_argument_group("scaling (docs/scaling.md)")
    scale.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="'local': predict in this process (default); 'ray': on Ray actors that hold a loaded "
        "model (pip install 'ser-benchmark[ray]')",
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

    ls = sub.add_parser("list", help="list registered models and datasets")
    ls.add_argument("--models", metavar="PATH", help="model registry file (default: models.yaml)")
    ls.add_argument("--datasets", metavar="PATH", help="dataset registry file (default: datasets.yaml)")

    eff = sub.add_parser("efficiency", help="measure parameters, ONNX size, ms per 5 s clip, peak memory")
    eff.add_argument(
        "--model", nargs="+", required=True, metavar="NAME", help="model name(s); 'all' for every available one"
    )
    eff.add_argument(
        "--repeats", type=positive_int, default=20, help="timed runs per model (median reported; default: 20)"
    )
    eff.add_argument("--models", metavar="PATH", help="model registry file (default: models.yaml)")

    from benchmark.score import add_parser as add_score_parser

    add_ci_unit(add_score_parser(sub))

    rep = sub.add_parser("report", help="judge every test against thresholds.yaml and write results/summary.csv")
    rep.add_argument("--thresholds", metavar="PATH", help="threshold file (default: thresholds.yaml)")

    docs = sub.add_parser("docs", help="regenerate docs/ from results/ (no model runs)")
    docs.add_argument("--full", action="store_true", help="draw every figure (default: only those whose data changed)")
    docs.add_argument(
        "--timing", action="store_true", help="print what was written, drawn and reused, and the time, to stderr"
    )

    sub.add_parser("demo", help="build and publish the embedded demo corpora (done automatically on first use)")

    imp = sub.add_parser(
        "import-dataset",
        help="import a folder of audio and a CSV of labels as a versioned audb dataset",
        description="Check the CSV row by row, build an audformat database of the good rows, publish it to a local "
        "file-system audb repository and write its entry into a dataset registry file (docs/adding-a-dataset.md).",
    )
    imp.add_argument("folder", metavar="FOLDER", help="folder holding the audio files")
    imp.add_argument(
        "--csv",
        required=True,
        metavar="PATH",
        help="labels: column 'file' (relative to FOLDER) and any of arousal, dominance, valence, "
        "the category column, speaker, sex",
    )
    imp.add_argument("--name", required=True, help="dataset name (audb name and registry name)")
    imp.add_argument("--version", required=True, help="version to publish, e.g. 1.0.0 (never overwritten)")
    imp.add_argument(
        "--repository",
        metavar="NAME=HOST",
        help="file-system audb repository to publish to (created if missing; default: 'local' in the "
        "benchmark's cache folder)",
    )
    imp.add_argument(
        "--datasets",
        default="datasets-own.yaml",
        metavar="PATH",
        help="registry file to write the entry into (default: datasets-own.yaml; the project's "
        "datasets.yaml is changed only if you name it)",
    )
    imp.add_argument(
        "--label-range",
        nargs=2,
        type=float,
        default=[0.0, 1.0],
        metavar=("LOW", "HIGH"),
        help="scale of the arousal/dominance/valence columns (default: 0 1)",
    )
    imp.add_argument("--category-column", default="emotion", help="CSV column of categories (default: emotion)")
    imp.add_argument(
        "--category-map",
        metavar="YAML",
        help="YAML file {category: {arousal: high|low, dominance: high|low, valence: positive|negative}} "
        "for categories the default map lacks",
    )
    cli_import.add_parser(sub)
    sub.add_parser(
        "distill",
        help="train a student from a teacher's outputs (see: python -m benchmark distill --help)",
        add_help=False,
    )
    return parser


def add_ci_unit(parser: argparse.ArgumentParser) -> None:
    r"""The ``--ci-unit`` option of the commands that compute intervals."""
    parser.add_argument(
        "--ci-unit",
        choices=("speaker", "file"),
        default="speaker",
        help="what the bootstraps resample: whole speakers where a split has them (default), or single files "
        "everywhere, as most published intervals do (narrower where files cluster by speaker)",
    )


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""Run a command; its exit code (0 ok, 1 failed tests, 2 usage error, 130 interrupted)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # everything finished is already on disk: result rows per family, predictions per chunk
        print(
            "interrupted: what finished is kept (results and prediction cache); run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _main(argv: typing.Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["distill"]:
        from benchmark.distill.cli import main as distill_main

        return distill_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except user_errors() as ex:
        message = ex.args[0] if isinstance(ex, KeyError) and ex.args else str(ex)  # str(KeyError) adds quotes
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args) -> int:
    if args.command == "run":
        from benchmark.run_command import run

        return run(args)
    if args.command == "list":
        return _list(args)
    if args.command == "efficiency":
        return _efficiency(args)
    if args.command == "report":
        return _report(args)
    if args.command == "score":
        from benchmark.score import cli as score_cli

        return score_cli(args)
    if args.command == "docs":
        from benchmark.docs.generate import regenerate

        summary = regenerate(reuse=not args.full)
        for path in summary.files:
            print(path)
        if args.timing:
            print(summary.line(), file=sys.stderr)
        return EXIT_OK
    if args.command == "import-dataset":
        return _import(args)
    if args.command == "import-corpus":
        return cli_import.run(args)
    if args.command == "demo":
        from benchmark.data import demo

        repo = demo.repository()
        print(f"demo corpora published in {repo.host}/{repo.name}")
        return EXIT_OK
    raise AssertionError(args.command)


def _import(args) -> int:
    import yaml

    from benchmark.data.importer import import_dataset

    mapping = yaml.safe_load(Path(args.category_map).read_text()) if args.category_map else None
    report = import_dataset(
        args.folder,
        args.csv,
        args.name,
        args.version,
        repository=args.repository,
        registry=args.datasets,
        label_range=args.label_range,
        category_column=args.category_column,
        category_map=mapping,
    )
    print("\n".join(report.lines()))
    repo = report.repository
    print(
        f"run it: python -m benchmark run --model NAME --datasets {report.registry} --dataset {args.name} "
        f"--repository {repo.name}={repo.host}"
    )
    return EXIT_OK


def _report(args) -> int:
    from tabulate import tabulate

    from benchmark import report

    thresholds = report.load_thresholds(args.thresholds)
    path = report.write_summary(thresholds=thresholds)
    summary = report.summarize(report.evaluate(report.read_tables(), thresholds))
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


def _list(args) -> int:
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


def _efficiency(args) -> int:
    from benchmark import efficiency
    from benchmark.registry import Registry

    registry = Registry.from_file(args.models)
    if args.model == ["all"]:
        from benchmark.run_command import available_models

        available = available_models(registry)
        # a teacher without weights here is timed as its architecture (random weights, marked as such)
        names = [n for n in registry if n in available or registry[n].config]
    else:
        names = args.model
    df = efficiency.run(names, registry, repeats=args.repeats)
    from tabulate import tabulate

    print(tabulate(df, headers="keys", showindex=False))
    return EXIT_OK
