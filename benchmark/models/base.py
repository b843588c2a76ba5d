"""The one interface every registered model is turned into.

A :class:`Predictor` maps a mono 16 kHz float32 signal to a vector
``(arousal, dominance, valence)`` on a 0..1 scale. Dimensions a model
does not predict are ``NaN`` (e.g. a sentiment-only model has no
arousal) and are reported as "not predicted", never scored.
"""

from __future__ import annotations

import abc
import typing

import numpy as np

from benchmark import DIMENSIONS


class Predictor(abc.ABC):
    r"""A loaded model, ready to predict A/D/V.

    Subclasses implement :meth:`predict`; :meth:`__call__` validates the
    input and output so that no model can hand a silently wrong shape to
    the runner.

    Args:
        name: registry name of the model
        artifact_hash: SHA-256 identifying the exact weights
            (or the parameters of a weight-free baseline)
        sampling_rate: rate the model expects; the runner resamples to it

    """

    dimensions: tuple[str, ...] = DIMENSIONS
    """Dimensions the model predicts; :func:`benchmark.registry.load_model` sets the entry's ``outputs``.
    Every other dimension of every prediction is NaN ("not predicted"), whatever the model computes."""

    def __init__(self, name: str, artifact_hash: str, sampling_rate: int = 16000):
        self.name = name
        self.artifact_hash = artifact_hash
        self.sampling_rate = sampling_rate

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "predict_batch" in cls.__dict__:  # a model's own batching is masked like a single prediction
            batch = cls.__dict__["predict_batch"]

            def predict_batch(self, signals, _batch=batch):
                return self.mask(np.asarray(_batch(self, signals), dtype=np.float64))

            predict_batch.__doc__, predict_batch.__wrapped__ = batch.__doc__, batch
            cls.predict_batch = predict_batch

    def mask(self, out: np.ndarray) -> np.ndarray:
        r"""``out`` (``(3,)`` or ``(n, 3)``) with the dimensions the model does not predict set to NaN.

        Examples:
            >>> from benchmark.models.baselines import Constant
            >>> model = Constant("c", "h", value=0.4)
            >>> model.dimensions = ("arousal", "valence")
            >>> model(np.zeros(10), 16000).tolist()
            [0.4, nan, 0.4]

        """
        keep = np.array([d in self.dimensions for d in DIMENSIONS])
        return np.where(keep, out, np.nan)

    @abc.abstractmethod
    def predict(self, signal: np.ndarray) -> np.ndarray:
        r"""Predict from a mono signal of shape ``(samples,)``.

        Returns:
            float array of shape ``(3,)`` in the order of
            :data:`benchmark.DIMENSIONS`

        """

    def predict_batch(self, signals: typing.Sequence[np.ndarray]) -> np.ndarray:
        r"""Predict for several signals; shape ``(len(signals), 3)``.

        Models that can batch (torch on a GPU) override this.
        """
        return np.stack([self(s, self.sampling_rate) for s in signals])

    def __call__(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        if sampling_rate != self.sampling_rate:
            raise ValueError(
                f"Model '{self.name}' expects {self.sampling_rate} Hz, "
                f"got {sampling_rate} Hz: resample first "
                "(the runner does this for you)."
            )
        signal = np.asarray(signal, dtype=np.float32)
        if signal.ndim == 2:
            if signal.shape[0] != 1:
                signal = signal.mean(axis=0)
            else:
                signal = signal[0]
        if signal.ndim != 1:
            raise ValueError(f"Model '{self.name}': expected a mono signal, got shape {signal.shape}.")
        out = np.asarray(self.predict(signal), dtype=np.float64).reshape(-1)
        if out.shape != (len(DIMENSIONS),):
            raise ValueError(f"Model '{self.name}' returned shape {out.shape}, expected (3,) for {DIMENSIONS}.")
        return self.mask(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, artifact_hash={self.artifact_hash[:12]!r})"


def outputs_to_adv(values: typing.Mapping[str, float], outputs: typing.Mapping[str, str]) -> np.ndarray:
    r"""Arrange a model's named outputs into the A/D/V vector.

    Args:
        values: model output name → value
        outputs: dimension → model output name (the registry's ``outputs``)

    Examples:
        >>> outputs_to_adv({"a": 0.2, "v": 0.9}, {"arousal": "a", "valence": "v"}).tolist()
        [0.2, nan, 0.9]

    """
    return np.array(
        [float(values[outputs[d]]) if d in outputs else np.nan for d in DIMENSIONS],
        dtype=np.float64,
    )
