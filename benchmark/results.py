"""Versioned result tables under ``results/``.

Every table is a CSV whose rows carry provenance: model name and
artefact SHA-256, dataset name/version/split/table and the fingerprint
of the split's content (audio checksums, labels, speakers), benchmark version
and code commit, and the date the row was first computed. Rows are
keyed by what determines them (model hash, dataset version, condition,
...): re-running with the same inputs leaves the file byte-identical,
also on another CPU, whose float32 kernels move the last printed digit
(see :data:`RTOL`); a changed model artefact adds new rows next to the
old ones instead of overwriting them. Writes are atomic (temporary file
+ rename) so an interrupted run never leaves a truncated table.

A results folder records the run settings its rows were made with
(``settings.yaml``: seed, bootstrap resamples, robustness subset size);
a run with other settings refuses to write there (:func:`claim_settings`),
so a quick run never replaces published numbers.
"""

from __future__ import annotations

import datetime
import functools
import os
import subprocess
from pathlib import Path

import filelock
import numpy as np
import pandas as pd

import benchmark
from benchmark.atomic import atomic_write_text  # noqa: F401  (re-exported: the writers of tables import it from here)
from benchmark.paths import PROJECT_ROOT, check_name, results_root

PROVENANCE = ("benchmark_version", "code_commit", "date")
"""Columns appended to every row; not part of the key, not compared."""

RTOL, ATOL = 2e-5, 2e-6
r"""Values closer than this (:func:`numpy.isclose`) are the same result.

The same ONNX model on the same data gives figures that differ in the
6th significant digit on CPUs with other vector units (measured: the
committed Wav2Small results of an AVX-512 Intel Xeon re-run on an AVX2
AMD EPYC differ by at most 1e-6 absolute, 7.5e-5 relative on values near
0). That is no new result: the row, its values and its provenance stay
as they are. A larger difference replaces the row.
"""

_SPLIT = ("model", "model_sha256", "dataset", "dataset_version", "data_fingerprint", "split")
# model artefact × exact data of one split; each table adds what else identifies its rows

KEYS = {
    # table name → columns that identify a row (besides nothing else)
    "correctness": (*_SPLIT, "dimension"),
    "distribution": (*_SPLIT, "dimension"),
    "robustness": (*_SPLIT, "condition", "dimension"),
    "fairness_sex": (*_SPLIT, "dimension", "group"),
    "fairness_pitch": (*_SPLIT, "dimension", "sex", "group"),
    "fairness_speaker": (*_SPLIT, "dimension"),
    "speakers": (*_SPLIT, "dimension", "speaker"),
    "consistency": (*_SPLIT, "dimension", "group"),
    "consistency_categories": (*_SPLIT, "category", "dimension"),
    "segmented": (*_SPLIT, "file"),  # long files predicted window by window (benchmark.runner.MAX_SIGNAL_SECONDS)
    "efficiency": ("model", "model_sha256"),
    "skips": (*_SPLIT, "condition", "file"),
    "runs": (*_SPLIT, "tests"),
}


@functools.lru_cache(maxsize=1)
def code_commit() -> str:
    r"""Git commit of the benchmark code (``'unknown'`` outside a checkout).

    A ``+dirty`` suffix marks uncommitted changes to the package.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "benchmark"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict:
    return {
        "benchmark_version": benchmark.__version__,
        "code_commit": code_commit(),
        "date": datetime.date.today().isoformat(),
    }


def table_path(name: str, root: Path | None = None) -> Path:
    return (root or results_root()) / f"{name}.csv"


def read_table(name: str, root: Path | None = None) -> pd.DataFrame:
    r"""Read a result table (empty frame if it does not exist yet)."""
    path = table_path(name, root)
    if not path.exists():
        return pd.DataFrame()
    return pd.read_csv(
        path, keep_default_na=True, dtype={"model_sha256": str, "dataset_version": str, "data_fingerprint": str}
    )


def _fmt(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.6g}")
        else:
            out[col] = out[col].map(lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))
    return out


def write_rows(name: str, rows: pd.DataFrame, root: Path | None = None) -> Path:
    r"""Upsert ``rows`` into result table ``name``.

    Rows whose key already exists with the same values keep their old
    provenance (so the file stays byte-identical); rows with a new key
    are added; rows with an existing key but new values replace the
    old ones and get fresh provenance. Output is sorted by key.
    """
    keys = list(KEYS[name])
    missing = [k for k in keys if k not in rows.columns]
    if missing:
        raise ValueError(f"Result table '{name}': rows lack key column(s) {missing}.")
    new = _fmt(rows.reset_index(drop=True))
    for col, value in provenance().items():
        new[col] = value
    path = table_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    # read-merge-replace under a lock: two benchmark runs in parallel must not drop each other's rows
    with filelock.FileLock(str(path) + ".lock"):
        return _upsert(path, name, keys, new)


def drop_rows(name: str, rows: pd.DataFrame, root: Path | None = None) -> int:
    r"""Remove the rows of table ``name`` whose key is one of ``rows``' keys; the number removed.

    For a record that stopped being true (the skip of a file predicted since); rewritten only if a row goes.
    """
    keys = list(KEYS[name])
    path = table_path(name, root)
    if not path.exists() or not len(rows):
        return 0
    gone = set(_fmt(rows[keys]).itertuples(index=False, name=None))
    with filelock.FileLock(str(path) + ".lock"):
        old = read_table(name, path.parent)
        if not len(old):
            return 0
        old = _fmt(old)
        drop = old[keys].apply(tuple, axis=1).isin(gone)
        if drop.any():
            atomic_write_text(path, old[~drop].to_csv(index=False, lineterminator="\n"))
    return int(drop.sum())


def same_values(new: pd.Series, old: pd.Series) -> pd.Series:
    r"""Element-wise: equal formatted values, or numbers within :data:`RTOL` / :data:`ATOL`.

    Examples:
        >>> same_values(pd.Series(["0.431278", "0.5", "x", ""]), pd.Series(["0.431279", "0.6", "x", ""])).tolist()
        [True, False, True, True]

    """
    new, old = new.reset_index(drop=True), old.reset_index(drop=True).fillna("")
    a, b = pd.to_numeric(new, errors="coerce"), pd.to_numeric(old, errors="coerce")
    close = np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=RTOL, atol=ATOL)
    return new.eq(old) | pd.Series(close & a.notna().to_numpy() & b.notna().to_numpy())


def _upsert(path: Path, name: str, keys: list[str], new: pd.DataFrame) -> Path:
    old = read_table(name, path.parent)
    old = _fmt(old) if len(old) else pd.DataFrame(columns=new.columns)
    value_cols = [c for c in new.columns if c not in keys and c not in PROVENANCE]
    if len(old):
        merged = new.merge(old, on=keys, how="left", suffixes=("", "__old"), indicator=True)
        same = merged["_merge"].eq("both")
        for c in value_cols:
            if c + "__old" in merged:
                same &= same_values(merged[c], merged[c + "__old"])
            else:
                same &= False
        # the same result: keep the row as it was, values and provenance
        for c in [*value_cols, *PROVENANCE]:
            if c + "__old" in merged:
                new.loc[same.values, c] = merged.loc[same, c + "__old"].fillna("").values
        old_keys = old.set_index(keys).index
        kept = old[~old_keys.isin(new.set_index(keys).index)]
        combined = pd.concat([kept, new], ignore_index=True)
    else:
        combined = new
    # the writer's column order, so a table that gains a column reads as a fresh run writes it
    values = [c for c in new.columns if c not in keys and c not in PROVENANCE]
    values += [c for c in combined.columns if c not in keys and c not in PROVENANCE and c not in values]
    columns = keys + values + list(PROVENANCE)
    combined = combined.reindex(columns=columns).fillna("")
    combined = combined.sort_values(keys, kind="stable").reset_index(drop=True)
    atomic_write_text(path, combined.to_csv(index=False, lineterminator="\n"))
    return path


def predictions_path(
    model: str,
    model_sha256: str,
    dataset: str,
    version: str,
    split: str,
    fingerprint: str,
    root: Path | None = None,
) -> Path:
    r"""Where the per-file predictions of a model artefact on one split's exact data are stored.

    ``predictions/MODEL__SHA12/DATASET__VERSION__SPLIT__FINGERPRINT12.csv``:
    the data fingerprint is part of the name, so a run on other labels or
    audio under the same version writes a file of its own. Every name is
    checked to be a plain file name (:func:`benchmark.paths.check_name`).

    Examples:
        >>> predictions_path("m", "ab" * 32, "demo-mosi", "1.0.0", "test", "cd" * 32, Path("/r")).as_posix()
        '/r/predictions/m__abababababab/demo-mosi__1.0.0__test__cdcdcdcdcdcd.csv'

    """
    for value, what in ((model, "model"), (dataset, "dataset"), (version, "dataset version"), (split, "split")):
        check_name(value, what)
    return (
        (root or results_root())
        / "predictions"
        / f"{model}__{model_sha256[:12]}"
        / f"{dataset}__{version}__{split}__{fingerprint[:12]}.csv"
    )


def read_predictions(
    model: str,
    model_sha256: str,
    dataset: str,
    version: str,
    split: str,
    correctness: pd.DataFrame,
    root: Path | None = None,
) -> pd.DataFrame | None:
    r"""Stored per-file predictions of a model artefact on a split (``None`` if none are stored).

    The data fingerprint comes from the artefact's ``correctness`` rows
    for that split; the newest row's fingerprint wins if the data changed.
    """
    if not len(correctness) or "data_fingerprint" not in correctness:
        return None
    rows = correctness[
        correctness["model"].eq(model)
        & correctness["model_sha256"].astype(str).str[:12].eq(model_sha256[:12])
        & correctness["dataset"].eq(dataset)
        & correctness["dataset_version"].astype(str).eq(str(version))
        & correctness["split"].eq(split)
    ]
    if "date" in rows:
        rows = rows.sort_values("date", ascending=False, kind="stable")
    for fingerprint in dict.fromkeys(rows["data_fingerprint"].astype(str)):
        path = predictions_path(model, model_sha256, dataset, version, split, fingerprint, root)
        if path.exists():
            return pd.read_csv(path, dtype={"file": str})
    return None


def write_predictions(
    model: str, model_sha256: str, evalset, predictions: pd.DataFrame, root: Path | None = None
) -> Path:
    r"""Store per-file truth and predictions (for scatter plots and re-analysis).

    File paths are stored relative to the database root so the table
    does not depend on where the cache lives. An existing file with the
    same predictions (within :data:`RTOL` / :data:`ATOL`) is left as it is.
    The file is named by :func:`predictions_path`.
    """
    path = predictions_path(
        model, model_sha256, evalset.audb_name, evalset.version, evalset.split, evalset.fingerprint, root
    )
    df = pd.DataFrame(index=predictions.index)
    for dim in predictions.columns:
        if dim in evalset.truth:
            df[f"truth_{dim}"] = evalset.truth[dim].reindex(predictions.index)
        df[f"pred_{dim}"] = predictions[dim]
    if evalset.speaker is not None:
        df["speaker"] = evalset.speaker.reindex(predictions.index)
    if evalset.sex is not None:
        df["sex"] = evalset.sex.reindex(predictions.index)
    rel = [os.path.relpath(f, evalset.root) for f in df.index]
    df.index = pd.Index(rel, name="file")
    table = _fmt(df.sort_index().reset_index())
    if path.exists():
        old = pd.read_csv(path, dtype=str, keep_default_na=False)
        if (
            list(old.columns) == list(table.columns)
            and len(old) == len(table)
            and all(same_values(table[c], old[c]).all() for c in table.columns)
        ):
            return path  # the same predictions (within RTOL/ATOL): the file stays as it is
    atomic_write_text(path, table.to_csv(index=False, lineterminator="\n"))
    return path


def as_float(df: pd.DataFrame, columns) -> pd.DataFrame:
    r"""Convert string columns read back from a table to floats (``''`` → NaN)."""
    out = df.copy()
    for c in columns:
        out[c] = pd.to_numeric(out[c].replace("", np.nan), errors="coerce")
    return out


def format_table(df: pd.DataFrame) -> pd.DataFrame:
    r"""Every value as the result tables store it: floats to 6 significant digits, missing values empty.

    Examples:
        >>> format_table(pd.DataFrame({"x": [1 / 3, None], "y": ["a", None]})).values.tolist()
        [['0.333333', 'a'], ['', '']]

    """
    return _fmt(df)


# ---------------------------------------------------------------- run settings

SETTINGS_FILE = "settings.yaml"
"""Side-car of a results folder: the run settings all its rows were made with."""

DEFAULT_SETTINGS = {"seed": 0, "bootstrap": 1000, "max_files": 200, "ci_unit": "speaker"}
r"""The settings of the project's committed ``results/`` (the CLI's defaults).

``seed``: bootstraps, subsets and perturbations; ``bootstrap``: resamples of
the confidence intervals; ``max_files``: the robustness subset (0: all files);
``ci_unit``: what the bootstraps resample, whole speakers where a split has
them or always single files (each row says which in its ``ci_unit``).
"""

SETTINGS_OF = {
    # family → the settings its rows depend on
    "correctness": ("seed", "bootstrap", "ci_unit"),
    "robustness": ("seed", "max_files"),
    "fairness": ("seed", "bootstrap", "ci_unit"),
    "consistency": ("seed", "bootstrap"),
}

_SETTINGS_TABLES = ("correctness", "robustness", "fairness_sex", "fairness_speaker", "speakers")

_SETTINGS_HEADER = (
    "# Run settings every result in this folder was made with (written by the benchmark).\n"
    "# A run with other settings refuses to write here: pass --results DIR for a folder of its own.\n"
)


class SettingsConflictError(ValueError):
    r"""A run's settings differ from those the results folder was made with."""


def run_settings(seed: int, options: dict, families) -> dict:
    r"""The settings that determine the rows of ``families``, as the analyses read them.

    A robustness condition selection is not a setting: each condition's
    rows are the same whichever other conditions run with it (the rows
    carry the ``condition_hash`` of the definition that made them).

    Examples:
        >>> run_settings(0, {"bootstrap": 1000, "max_files": None}, ["robustness"])
        {'seed': 0, 'max_files': 0}
        >>> run_settings(7, {}, ["correctness"])
        {'seed': 7, 'bootstrap': 1000, 'ci_unit': 'speaker'}

    """
    bootstrap = options.get("bootstrap", DEFAULT_SETTINGS["bootstrap"])
    values = {
        "seed": int(seed),
        "bootstrap": DEFAULT_SETTINGS["bootstrap"] if bootstrap is True or bootstrap is None else int(bootstrap),
        "max_files": int(options.get("max_files") or 0),
        "ci_unit": str(options.get("ci_unit") or DEFAULT_SETTINGS["ci_unit"]),
    }
    keys = [k for k in DEFAULT_SETTINGS if any(k in SETTINGS_OF.get(f, ()) for f in families)]
    return {k: values[k] for k in keys}


def read_settings(root: Path | None = None) -> dict | None:
    r"""Settings recorded in a results folder; ``None`` if it records none."""
    import yaml

    path = (root or results_root()) / SETTINGS_FILE
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise SettingsConflictError(f"{path}: expected a mapping of settings; fix or delete the file.")
    return data


def check_settings(settings: dict, root: Path | None = None) -> dict:
    r"""The settings the results folder was made with, if a run with ``settings`` may write there.

    Writes nothing (a run checks this before any work; :func:`claim_settings` records them).
    Raises :class:`SettingsConflictError`, saying which setting differs and how to write elsewhere.
    """
    root = root or results_root()
    recorded = read_settings(root)
    if recorded is None:
        made = any(table_path(t, root).exists() for t in _SETTINGS_TABLES)
        recorded = dict(DEFAULT_SETTINGS) if made else {}
    conflicts = {k: (recorded[k], v) for k, v in settings.items() if k in recorded and recorded[k] != v}
    if conflicts:
        made = ", ".join(f"{k} {old}" for k, (old, _) in conflicts.items())
        asked = ", ".join(f"{k} {new}" for k, (_, new) in conflicts.items())
        raise SettingsConflictError(
            f"{root} holds results made with {made}; this run uses {asked}. Results made with other "
            f"settings are never replaced: pass --results DIR to write this run to a folder of its own "
            f"(or run with the folder's settings)."
        )
    return recorded


def claim_settings(settings: dict, root: Path | None = None) -> None:
    r"""Make sure the results folder may take rows made with ``settings``.

    A folder without a settings file but with result tables was made with
    :data:`DEFAULT_SETTINGS` (tables from before settings were recorded);
    an empty folder takes the settings of its first run. Settings a folder
    does not record yet are added to its file; the file is rewritten only
    when it changes, so a default run leaves ``results/`` byte-identical.

    Raises:
        SettingsConflictError: a setting differs from the folder's; the
            message says which and how to write elsewhere

    """
    import yaml

    root = root or results_root()
    root.mkdir(parents=True, exist_ok=True)
    path = root / SETTINGS_FILE
    with filelock.FileLock(str(path) + ".lock"):
        recorded = check_settings(settings, root)
        merged = {**recorded, **settings}
        merged = {
            k: merged[k] for k in [*DEFAULT_SETTINGS, *sorted(set(merged) - set(DEFAULT_SETTINGS))] if k in merged
        }
        if not path.exists() or read_settings(root) != merged:
            atomic_write_text(path, _SETTINGS_HEADER + yaml.safe_dump(merged, sort_keys=False))
