"""Score stored predictions again, without a model: ``python -m benchmark score``.

The analyses are functions of predictions: the families that read only
the clean predictions of a split (correctness, fairness, consistency)
can be recomputed from ``results/predictions/`` alone, e.g. after a
change to how intervals are computed. Only the intervals of the rows the
tables hold are replaced (:func:`merge_stored`). No model is loaded and no audio is
predicted; the split itself is loaded for its gold labels, speakers and
(pitch groups) audio, and must be the build the predictions were made on
(same data fingerprint), else the file is skipped with the reason.

Robustness needs the predictions on perturbed audio, which are not
stored in ``results/``: its rows are left as they are.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import analyses, results
from benchmark.data import datasets as dsets
from benchmark.paths import results_root
from benchmark.registry import Registry

FAMILIES = ("correctness", "fairness", "consistency")
"""Families scored from the clean predictions alone."""

INTERVALS = {
    "correctness": ("ccc_ci_low", "ccc_ci_high", "ci_unit"),
    "fairness_sex": ("ci_low", "ci_high", "ci_unit"),
    "fairness_pitch": ("ci_low", "ci_high", "ci_unit"),
    "consistency": ("ci_low", "ci_high"),
    "consistency_categories": ("ci_low", "ci_high"),
}
"""Per table, the columns scoring replaces: the intervals and what they resampled."""

STORED_RTOL, STORED_ATOL = 1e-4, 1e-5
r"""Agreement of recomputed point values with the stored ones.

Predictions are stored to 6 significant digits, so a CCC recomputed from
them can move in its 6th digit (measured on the committed results: at most
a few 1e-6); a larger difference is reported.
"""


class NoModelError(RuntimeError):
    r"""An analysis asked for new predictions while scoring stored ones."""


@dataclasses.dataclass(frozen=True)
class StoredArtefact:
    r"""The model artefact stored predictions came from: only its hash is known, nothing predicts."""

    artifact_hash: str


@dataclasses.dataclass(frozen=True)
class StoredFile:
    r"""One file of stored predictions, named by :func:`benchmark.results.predictions_path`."""

    path: Path
    model: str
    sha12: str
    dataset: str
    version: str
    split: str
    fingerprint: str

    @classmethod
    def parse(cls, path: Path) -> StoredFile | None:
        r"""The parts of a predictions file name (``None`` for a name of another layout).

        Examples:
            >>> StoredFile.parse(Path("p/m__abc/demo-mosi__1.0.0__test__cd.csv")).split
            'test'

        """
        model, _, sha = path.parent.name.rpartition("__")
        parts = path.stem.split("__")
        if not model or len(parts) != 4:
            return None
        return cls(path, model, sha, *parts)


def stored_files(root: Path | None = None) -> list[StoredFile]:
    r"""Every predictions file under ``root/predictions`` (sorted by path)."""
    folder = (root or results_root()) / "predictions"
    found = [StoredFile.parse(p) for p in sorted(folder.glob("*/*.csv"))]
    return [f for f in found if f is not None]


def score_stored(
    *,
    tests: typing.Sequence[str] = FAMILIES,
    data: str = "demo",
    repositories: typing.Sequence | None = None,
    registry: Registry | None = None,
    dataset_registry: dict | None = None,
    seed: int = 0,
    options: dict | None = None,
    log: typing.Callable[[str], None] = print,
    results_dir: Path | None = None,
) -> dict[str, int]:
    r"""Re-score every stored predictions file and upsert the rows of ``tests`` into the results folder.

    ``results_dir`` is that folder (default :func:`benchmark.paths.results_root`).

    Returns:
        rows written per table

    Raises:
        ValueError: a family in ``tests`` that needs predictions not stored

    """
    wrong = [t for t in tests if t not in FAMILIES]
    if wrong:
        raise ValueError(f"Cannot score {wrong} from stored predictions; choose from {', '.join(FAMILIES)}.")
    options = {"data": data, **(options or {})}
    registry = registry if registry is not None else Registry.from_file()
    dataset_registry = dataset_registry if dataset_registry is not None else dsets.load_registry()
    results.claim_settings(results.run_settings(seed, options, tests), results_dir)
    correctness = results.read_table("correctness", results_dir)
    written: dict[str, int] = {}
    for stored in stored_files(results_dir):
        problem, context = _context(stored, correctness, registry, dataset_registry, data, repositories, seed, options)
        if problem:
            log(f"skip {stored.path.name} of {stored.model}: {problem}")
            continue
        for family in tests:
            if analyses.not_applicable(family, context.evalset, context.entry.dimensions):
                continue
            tables = importlib.import_module(f"benchmark.analyses.{family}").run(context)
            for table, rows in tables.items():
                if rows is None or not len(rows) or not INTERVALS.get(table):
                    continue
                rows, moved = merge_stored(table, rows, results_dir)
                for column, count in moved.items():
                    log(
                        f"{table} {stored.model} {stored.dataset}/{stored.split}: {count} '{column}' value(s) differ "
                        "beyond the precision of the stored predictions; the stored values are kept"
                    )
                if len(rows):
                    results.write_rows(table, rows, results_dir)
                    written[table] = written.get(table, 0) + len(rows)
        log(f"scored {stored.model} {stored.sha12} on {stored.dataset}/{stored.split}")
    return written


def merge_stored(
    table: str, rows: pd.DataFrame, results_dir: Path | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    r"""``rows`` of the keys ``table`` holds, with its stored point values and the new intervals.

    The point values (every column but :data:`INTERVALS`) of a table were
    computed from the unrounded predictions; recomputed from the stored
    ones they can differ in the last printed digit. They are kept as
    stored, so that scoring moves only the intervals. Rows of keys the
    table does not hold are left out: scoring adds no results.

    Returns:
        the rows as formatted text, and per point column the number of values
        that differ beyond :data:`STORED_RTOL` / :data:`STORED_ATOL`

    """
    keys = list(results.KEYS[table])
    old = results.format_table(results.read_table(table, results_dir))
    new = results.format_table(rows)
    if not len(old):
        return new.iloc[:0], {}
    merged = new.merge(old, on=keys, how="inner", suffixes=("", "__stored"))
    moved = {}
    for column in [c for c in new.columns if c not in keys and c not in INTERVALS[table]]:
        if column + "__stored" not in merged:
            continue
        a = pd.to_numeric(merged[column], errors="coerce").to_numpy(float)
        b = pd.to_numeric(merged[column + "__stored"], errors="coerce").to_numpy(float)
        close = np.isclose(a, b, rtol=STORED_RTOL, atol=STORED_ATOL, equal_nan=True)
        differ = int((~(close | merged[column].eq(merged[column + "__stored"]).to_numpy())).sum())
        if differ:
            moved[column] = differ
        merged[column] = merged[column + "__stored"]
    return merged[list(new.columns)], moved


def _context(stored: StoredFile, correctness, registry, dataset_registry, data, repositories, seed, options):
    r"""``(problem, None)`` if ``stored`` cannot be scored here, else ``('', Context)``."""
    if stored.model not in registry:
        return f"model '{stored.model}' is not in the model registry", None
    rows = correctness[correctness["model"].eq(stored.model)] if len(correctness) else correctness
    hashes = sorted({h for h in rows.get("model_sha256", pd.Series(dtype=str)).astype(str) if h[:12] == stored.sha12})
    if len(hashes) != 1:
        return f"{len(hashes)} artefact hashes in correctness.csv start with {stored.sha12}", None
    entries = [e for e in dataset_registry.values() if e.coordinates(data) == (stored.dataset, stored.version)]
    if not entries:
        return f"no registered dataset is {stored.dataset} {stored.version} with --data {data}", None
    evalset = dsets.load_split(entries[0], stored.split, data=data, repositories=repositories)
    if evalset.fingerprint[:12] != stored.fingerprint:
        return (
            f"the split's data changed (fingerprint {evalset.fingerprint[:12]}, predictions {stored.fingerprint})",
            None,
        )
    clean = stored_clean(stored.path, evalset)
    context = analyses.Context(
        StoredArtefact(hashes[0]), registry[stored.model], evalset, _no_model, clean, seed=seed, options=options
    )
    return "", context


def stored_clean(path: Path, evalset) -> pd.DataFrame:
    r"""The ``pred_*`` columns of a predictions file, indexed and ordered like ``evalset.files``.

    The order is the one the runner scores in, so seeded file-level
    bootstraps draw the same files as in the run that stored them.
    """
    stored = pd.read_csv(path, dtype={"file": str}).set_index("file")
    by_relative = {os.path.relpath(f, evalset.root): f for f in evalset.files}
    unknown = [f for f in stored.index if f not in by_relative]
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} file(s) are not in the split, e.g. {unknown[0]}.")
    stored.index = pd.Index([by_relative[f] for f in stored.index], name="file").astype("string")
    columns = {c: c.removeprefix("pred_") for c in stored.columns if c.startswith("pred_")}
    clean = stored[list(columns)].rename(columns=columns).astype("float64")
    order = evalset.files.astype("string")
    return clean.reindex(order[order.isin(clean.index)])


def _no_model(files=None, condition=None) -> pd.DataFrame:
    raise NoModelError(
        "scoring stored predictions loads no model: this analysis needs new predictions "
        "(run it with `python -m benchmark run`)"
    )
