"""``python -m benchmark import-corpus``: an official release folder as a versioned audb dataset."""

from __future__ import annotations

import argparse

from benchmark.commands.options import add_publish_options
from benchmark.run_checks import EXIT_OK


def add_parser(sub) -> None:
    r"""Add ``import-corpus`` to the sub-commands ``sub`` of the benchmark's parser."""
    from benchmark.data.releases import CORPORA

    imp = sub.add_parser(
        "import-corpus",
        help="import an official corpus release folder (MSP-Podcast, IEMOCAP, EmoDB) as a versioned audb dataset",
        description="Read the release folder as its publisher distributes it, publish it with audEERING's table "
        "names and 0..1 scales to a local file-system audb repository and write its entry into a dataset "
        "registry file (docs/real-corpora.md).",
    )
    imp.add_argument("corpus", choices=CORPORA, help="the release layout")
    imp.add_argument("path", metavar="PATH", help="the release folder")
    imp.add_argument("--version", required=True, help="version to publish, e.g. 1.0.0 (never overwritten)")
    imp.add_argument("--name", help="dataset name (audb name and registry name; default: the corpus name)")
    add_publish_options(imp)
    imp.add_argument(
        "--test-session",
        type=int,
        default=5,
        metavar="N",
        help="IEMOCAP only: the session used as split 'test', the others are 'train' (default: 5; "
        "1-4 give the other leave-one-session-out folds)",
    )


def run(args: argparse.Namespace) -> int:
    r"""Import the release named by ``args``; print what was published and how to run it."""
    from benchmark.data.errors import DatasetConfigError
    from benchmark.data.releases import import_corpus

    options = {}
    if args.corpus == "iemocap":
        options["test_session"] = args.test_session
    elif args.test_session != 5:
        raise DatasetConfigError("--test-session applies to iemocap only.")
    report = import_corpus(
        args.corpus,
        args.path,
        args.version,
        name=args.name,
        repository=args.repository,
        registry=args.datasets,
        **options,
    )
    print("\n".join(report.lines()))
    repo = report.repository
    print(
        f"run it: python -m benchmark run --model NAME --data real --datasets {report.registry} "
        f"--dataset {report.entry['name']} --repository {repo.name}={repo.host}"
    )
    return EXIT_OK
