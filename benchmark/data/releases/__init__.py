"""Importers of official corpus releases: one module per release layout.

``python -m benchmark import-corpus {msppodcast,iemocap,emodb} PATH --version V``
reads the release folder as its publisher distributes it and publishes a
versioned audb dataset with the table names and 0..1 scales audEERING's
databases use, plus its registry entry (see ``docs/real-corpora.md``).
"""

from __future__ import annotations

import importlib
import os

CORPORA = ("msppodcast", "iemocap", "emodb")
"""The release layouts ``import-corpus`` reads."""


def import_corpus(
    corpus: str,
    path: str | os.PathLike,
    version: str,
    *,
    name: str | None = None,
    repository: str | None = None,
    registry: str | os.PathLike = "datasets-own.yaml",
    **options,
):
    r"""Import the release of ``corpus`` at ``path`` (see :data:`CORPORA`); returns the import report.

    Args:
        corpus: one of :data:`CORPORA`
        path: the release folder
        version: version to publish
        name: audb and registry name (default: ``corpus``)
        repository: ``NAME=HOST`` of a file-system audb repository
        registry: registry file the entry is written into
        **options: options of the release's importer (e.g. ``test_session`` for IEMOCAP)

    """
    from benchmark.data.errors import DatasetConfigError
    from benchmark.paths import name_problem

    if corpus not in CORPORA:
        raise DatasetConfigError(f"Unknown corpus '{corpus}': choose from {', '.join(CORPORA)}.")
    for what, value in (("--name", name or corpus), ("--version", version)):
        if name_problem(value):  # before the release is read: it may be large
            raise DatasetConfigError(f"{what}: {name_problem(value)}")
    module = importlib.import_module(f"benchmark.data.releases.{corpus}")
    return module.import_release(
        path, version, name=name or corpus, repository=repository, registry=registry, **options
    )
