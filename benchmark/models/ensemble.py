"""Loader for kind ``ensemble``: the (weighted) mean of registered models.

Averaging is NaN-aware per dimension: a dimension that only some
members predict (e.g. a sentiment model's valence next to A/D/V
models) is the mean over those members, and NaN only if none predicts it.
"""

from __future__ import annotations

import json
import typing

import numpy as np

from benchmark import DIMENSIONS
from benchmark.hashing import sha256_text
from benchmark.models.base import Predictor


def nan_weighted_mean(predictions: np.ndarray, weights: typing.Sequence[float]) -> np.ndarray:
    r"""Weighted mean over axis 0, ignoring NaN entries.

    Args:
        predictions: shape ``(members, ..., 3)``
        weights: one non-negative weight per member

    Examples:
        >>> p = np.array([[0.2, np.nan, 0.6], [0.4, np.nan, np.nan]])
        >>> nan_weighted_mean(p, [1, 1]).round(3).tolist()
        [0.3, nan, 0.6]
        >>> nan_weighted_mean(p, [3, 1]).round(3).tolist()
        [0.25, nan, 0.6]

    """
    predictions = np.asarray(predictions, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).reshape((-1,) + (1,) * (predictions.ndim - 1))
    valid = ~np.isnan(predictions)
    total = np.where(valid, w, 0.0).sum(axis=0)
    summed = np.where(valid, predictions * w, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, summed / np.where(total > 0, total, 1.0), np.nan)


class Ensemble(Predictor):
    r"""Mean of several :class:`Predictor` objects.

    Members expecting another sampling rate get the signal resampled.

    Args:
        name: registry name
        members: the loaded members
        weights: one non-negative weight per member (default: equal)
        sampling_rate: rate of the signals the ensemble receives

    """

    def __init__(
        self,
        name: str,
        members: typing.Sequence[Predictor],
        weights: typing.Sequence[float] | None = None,
        *,
        sampling_rate: int = 16000,
    ):
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members):
            raise ValueError(f"Ensemble '{name}': {len(weights)} weights for {len(members)} members.")
        if any(w < 0 or not np.isfinite(w) for w in weights) or sum(weights) <= 0:
            raise ValueError(f"Ensemble '{name}': weights must be non-negative with a positive sum, got {weights}.")
        super().__init__(name, ensemble_hash(members, weights), sampling_rate)
        self.members = list(members)
        self.weights = weights

    def predict(self, signal: np.ndarray) -> np.ndarray:
        stacked = np.stack([m(self._for(m, signal), m.sampling_rate) for m in self.members])
        return nan_weighted_mean(stacked, self.weights)

    def predict_batch(self, signals: typing.Sequence[np.ndarray]) -> np.ndarray:
        r"""Batched: each member predicts the whole batch (GPU teachers batch)."""
        signals = [np.asarray(s, dtype=np.float32) for s in signals]
        if not signals:
            return np.empty((0, len(DIMENSIONS)))
        stacked = np.stack(
            [np.asarray(m.predict_batch([self._for(m, s) for s in signals]), dtype=np.float64) for m in self.members]
        )
        return nan_weighted_mean(stacked, self.weights)

    def _for(self, member: Predictor, signal: np.ndarray) -> np.ndarray:
        if member.sampling_rate == self.sampling_rate:
            return signal
        import audresample

        return audresample.resample(np.asarray(signal, dtype=np.float32), self.sampling_rate, member.sampling_rate)[0]


def ensemble_hash(members: typing.Sequence[Predictor], weights: typing.Sequence[float]) -> str:
    r"""SHA-256 of the sorted (member hash, weight) pairs: member order does not matter."""
    pairs = sorted((m.artifact_hash, float(w)) for m, w in zip(members, weights))
    return sha256_text(json.dumps({"kind": "ensemble", "members": pairs}))


def load(entry, registry=None) -> Predictor:
    r"""Loader for kind ``ensemble``: ``source.members`` are registry names; ``params.weights`` optional."""
    from benchmark.registry import load_model

    names = list(entry.source["members"])
    if registry is not None:
        _check_cycles(entry.name, registry)
    members = [load_model(name, registry) for name in names]
    return Ensemble(
        entry.name,
        members,
        entry.params.get("weights"),
        sampling_rate=entry.sampling_rate,
    )


def _check_cycles(name: str, registry, path: tuple[str, ...] = ()) -> None:
    r"""Refuse ensembles that contain themselves through other ensembles."""
    if name in path:
        raise ValueError(f"Ensemble cycle in models.yaml: {' -> '.join(path + (name,))}; remove one member.")
    entry = registry[name]
    if entry.kind == "ensemble":
        for member in entry.source["members"]:
            _check_cycles(member, registry, path + (name,))
