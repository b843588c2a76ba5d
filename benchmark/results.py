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
"""

from __future__ import annotations

import datetime
import functools
import os
import subprocess
import tempfile
from pathlib import Path

import filelock
import numpy as np
import pandas as pd

import benchmark
from benchmark.paths import PROJECT_ROOT, results_root

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
            cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "benchmark"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10,
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
    return pd.read_csv(path, keep_default_na=True, dtype={"model_sha256": str, "dataset_version": str, "data_fingerprint": str})


def _fmt(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.6g}")
        else:
            out[col] = out[col].map(lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))
    return out


def atomic_write_text(path: Path, text: str) -> None:
    r"""Write ``text`` to ``path`` via a temporary file and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fp:
            fp.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
    columns = keys + [c for c in combined.columns if c not in keys and c not in PROVENANCE] + list(PROVENANCE)
    combined = combined.reindex(columns=columns).fillna("")
    combined = combined.sort_values(keys, kind="stable").reset_index(drop=True)
    atomic_write_text(path, combined.to_csv(index=False, lineterminator="\n"))
    return path


def write_predictions(model: str, model_sha256: str, evalset, predictions: pd.DataFrame, root: Path | None = None) -> Path:
    r"""Store per-file truth and predictions (for scatter plots and re-analysis).

    File paths are stored relative to the database root so the table
    does not depend on where the cache lives. An existing file with the
    same predictions (within :data:`RTOL` / :data:`ATOL`) is left as it is.
    """
    root = root or results_root()
    path = root / "predictions" / f"{model}__{model_sha256[:12]}" / f"{evalset.audb_name}__{evalset.version}__{evalset.split}.csv"
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
        if list(old.columns) == list(table.columns) and len(old) == len(table) and all(
            same_values(table[c], old[c]).all() for c in table.columns
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
