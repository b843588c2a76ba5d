"""Reference baselines that need no weights.

Like the random references of audEERING's ser-tests, they anchor every
table: a useful model must beat ``random-gaussian`` (CCC ≈ 0) and
``constant`` (CCC exactly 0).
"""

from __future__ import annotations

import hashlib

import numpy as np

from benchmark.hashing import sha256_text
from benchmark.models.base import Predictor


class RandomGaussian(Predictor):
    r"""Draws A/D/V from a clipped Gaussian.

    The draw is seeded by ``seed`` *and* the signal's bytes, so a file
    gets the same prediction whatever order or process it is run in.

    Examples:
        >>> m = RandomGaussian("r", "h", seed=0)
        >>> x = np.zeros(16000, dtype=np.float32)
        >>> bool((m(x, 16000) == m(x, 16000)).all())
        True

    """

    def __init__(self, name, artifact_hash, seed: int = 0, mean: float = 0.5, std: float = 0.15, **kw):
        super().__init__(name, artifact_hash, **kw)
        self.seed, self.mean, self.std = int(seed), float(mean), float(std)

    def predict(self, signal: np.ndarray) -> np.ndarray:
        digest = hashlib.sha256(np.ascontiguousarray(signal, dtype=np.float32).tobytes()).digest()
        rng = np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])
        return np.clip(rng.normal(self.mean, self.std, size=3), 0.0, 1.0)


class Constant(Predictor):
    r"""Predicts the same value for every input.

    Examples:
        >>> Constant("c", "h", value=0.4)(np.zeros(10), 16000).tolist()
        [0.4, 0.4, 0.4]

    """

    def __init__(self, name, artifact_hash, value: float | list = 0.5, **kw):
        super().__init__(name, artifact_hash, **kw)
        self.value = np.broadcast_to(np.asarray(value, dtype=np.float64), (3,)).copy()

    def predict(self, signal: np.ndarray) -> np.ndarray:
        return self.value


def load(entry, registry=None) -> Predictor:
    r"""Loader for kinds ``random`` and ``constant``."""
    cls = RandomGaussian if entry.kind == "random" else Constant
    return cls(entry.name, sha256_text(entry.spec_hash_payload()), sampling_rate=entry.sampling_rate, **entry.params)
