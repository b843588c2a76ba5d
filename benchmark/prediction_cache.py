"""The prediction store: on-disk predictions of one model × split × condition, and their keys.

A cell's predictions live in one folder keyed by the model artefact hash,
the dataset name/version/split, the fingerprint of the split's content and
the condition (:func:`condition_key`). A skip records the state of its file
(:func:`benchmark.hashing.file_state`), so a file that comes back, or whose
bytes change, is predicted again by the next run instead of staying skipped.
"""

from __future__ import annotations

import json

import pandas as pd

from benchmark import DIMENSIONS
from benchmark.hashing import file_state, sha256_text
from benchmark.paths import cache_dir, check_name
from benchmark.results import atomic_write_text


def condition_key(condition: dict | None) -> str:
    r"""Stable cache key of a perturbation condition (``'clean'`` for none).

    Examples:
        >>> condition_key(None)
        'clean'
        >>> condition_key({"name": "gain+1", "type": "gain", "db": 1})[:7]
        'gain+1-'

    """
    if not condition:
        return "clean"
    return f"{condition['name']}-{sha256_text(json.dumps(condition, sort_keys=True))[:10]}"


def empty_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Empty predictions (A/D/V) and skips (reason, state), indexed by file."""
    idx = pd.Index([], name="file", dtype="string")
    return pd.DataFrame(columns=list(DIMENSIONS), index=idx, dtype="float64"), pd.DataFrame(
        columns=["reason", "state"], index=idx.copy(), dtype="string"
    )


class PredictionCache:
    r"""On-disk predictions of one model × split × condition.

    Two CSV files in one folder: ``predictions.csv`` (file + A/D/V) and
    ``skips.csv`` (file + reason + the file's state when it was skipped),
    both rewritten atomically. A skip whose file is not in that state any
    more (it came back, or its bytes changed) is stale: :meth:`load` leaves
    it out, so the file is predicted again, and lists it in :attr:`stale`.
    """

    def __init__(self, model, evalset, condition: dict | None = None, batch_size: int = 1):
        r"""``batch_size``: files per ``predict_batch`` call of a model that batches (else 1)."""
        for name, what in (
            (model.name, "model"),
            (evalset.audb_name, "dataset"),
            (evalset.version, "dataset version"),
            (evalset.split, "split"),
            (condition_key(condition), "condition"),
        ):
            check_name(name, what)  # each becomes a folder: none may reach outside the cache
        # Padded batches move predictions in the last digits: a batched run keeps its own cache.
        batched = f"-batch{batch_size}" if batch_size > 1 else ""
        self.folder = cache_dir(
            "predictions",
            model.name,
            model.artifact_hash[:16],
            f"{evalset.audb_name}-{evalset.version}-{evalset.split}-{evalset.fingerprint[:12]}",
            condition_key(condition) + batched,
        )
        self.pred_path = self.folder / "predictions.csv"
        self.skip_path = self.folder / "skips.csv"
        self.stale: list[str] = []

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        r"""Cached predictions and the skips that still hold (stale ones go to :attr:`stale`)."""
        pred, skips = empty_frames()
        if self.pred_path.exists():
            pred = pd.read_csv(self.pred_path, index_col="file", dtype={"file": "string"})
            pred = pred.astype("float64")
        if self.skip_path.exists():
            skips = pd.read_csv(
                self.skip_path, index_col="file", dtype={"file": "string", "reason": "string", "state": "string"}
            )
            # a skip written before states were recorded has none: its file is tried once more
            recorded = skips["state"] if "state" in skips else pd.Series(pd.NA, index=skips.index, dtype="string")
            holds = [pd.notna(was) and was == file_state(file) for file, was in recorded.items()]
            self.stale = [f for f, ok in zip(skips.index, holds) if not ok]
            skips = skips[holds].reindex(columns=["reason", "state"])
        return pred, skips

    def save(self, pred: pd.DataFrame, skips: pd.DataFrame) -> None:
        r"""Write ``pred`` and ``skips``; a skip without a state gets its file's state now."""
        skips = skips.reindex(columns=["reason", "state"]).astype("string")
        skips["state"] = [was if pd.notna(was) and was else file_state(file) for file, was in skips["state"].items()]
        atomic_write_text(self.pred_path, pred.to_csv(float_format="%.9g", lineterminator="\n"))
        atomic_write_text(self.skip_path, skips.to_csv(lineterminator="\n"))
