"""``python -m benchmark import-dataset``: a folder of audio and a CSV of labels as a versioned audb dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.commands.options import add_publish_options
from benchmark.run_checks import EXIT_OK


def add_parser(sub) -> None:
    r"""Add ``import-dataset`` to the sub-commands ``sub`` of the benchmark's parser."""
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
    add_publish_options(imp)
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


def run(args: argparse.Namespace) -> int:
    r"""Import the folder named by ``args``; print what was published and how to run it."""
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
