"""Loader for kind ``egemaps``: the offline teacher of the embedded demo.

eGeMAPSv02 functionals (88 features, Eyben et al., IEEE TAC 2016)
of the gain-normalised signal are standardised, clipped to ``±DEFAULT_CLIP``
standard deviations and fed
to one ridge regression per dimension, fitted in closed form on a
labelled split. The clipping matters: a functional normalised by a mean
close to zero (a ``stddevNorm`` of a short or near-silent crop) can land
thousands of standard deviations from the training data, and an
unclipped linear model then answers -150 on a 0..1 scale.

Each signal is first scaled to zero mean and a fixed RMS, as wav2vec2's
feature extractor and the students normalise theirs: recording gain says
nothing about emotion, the real teachers cannot see it, and a teacher
that keys on absolute level would hand its students targets they
cannot reproduce (and fail the benchmark's own ``gain`` condition). The ridge penalty is chosen per
dimension by cross-validation over speaker-grouped folds (speakers never
straddle a fold, as in the evaluation), maximising the CCC of the
pooled out-of-fold predictions, the benchmark's own metric.

Fitting takes seconds to minutes, so the fitted model is cached under
``cache_dir('models', 'egemaps', <key>)`` where the key hashes the
training data (audb name, version, table, file names, labels, speakers)
and the parameters; later loads read ``model.npz`` and skip fitting.
The ``.npz`` is written byte-for-byte deterministically, so its SHA-256,
the artifact hash, is the same whenever the same data gives the same fit —
on one machine: the last bits of a fit follow the CPU's vector instructions,
which is why the project's demo teacher is a pinned file (``source.path``).
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import threading
import time
import typing
import zipfile
from pathlib import Path

import numpy as np

from benchmark import DIMENSIONS
from benchmark.atomic import atomic_write
from benchmark.metrics import ccc_numpy as ccc
from benchmark.models.base import Predictor

FEATURE_SET = "eGeMAPSv02"
FORMAT = 2
"""Version of the cached model layout; bump it when fitting changes, so old caches are not reused."""

DEFAULT_CLIP = 5.0
"""Standardised features are clipped to this many standard deviations (fit and prediction)."""

DEFAULT_NORMALISE = True
"""Scale each signal to zero mean and a fixed RMS before extracting features."""

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))
SAMPLING_RATE = 16000


def _smile(num_workers: int = 1):
    r"""eGeMAPSv02 functionals at 16 kHz, all channels mixed down (as :class:`Predictor` does)."""
    import opensmile

    return opensmile.Smile(
        opensmile.FeatureSet.eGeMAPSv02,
        opensmile.FeatureLevel.Functionals,
        sampling_rate=SAMPLING_RATE,
        resample=True,
        channels=None,
        mixdown=True,
        num_workers=num_workers,
    )


class EgemapsRegressor(Predictor):
    r"""eGeMAPS functionals → standardisation → one ridge regression per dimension.

    Args:
        name: registry name
        mean, scale: feature standardisation, shape ``(88,)``
        clip: standardised features are clipped to ``[-clip, clip]``
            (``inf``: no clipping, the layout of format 1)
        normalise: scale each signal to zero mean and a fixed RMS
            before extracting features (format 1: no)
        coef: weights, shape ``(3, 88)``; a row of NaN marks a dimension
            without training labels (predicted as NaN)
        intercept: shape ``(3,)``
        alpha: ridge penalty per dimension, shape ``(3,)``
        meta: feature names, CV scores, data provenance (stored as JSON)
        num_workers: threads for :meth:`predict_batch`

    """

    def __init__(
        self,
        name,
        mean,
        scale,
        coef,
        intercept,
        alpha,
        meta=None,
        *,
        clip=np.inf,
        normalise=False,
        num_workers: int = 1,
    ):
        self.arrays = {
            "mean": np.asarray(mean, dtype=np.float64),
            "scale": np.asarray(scale, dtype=np.float64),
            "clip": np.asarray(clip, dtype=np.float64).reshape(1),  # 1-d: .npz stores no 0-d arrays here
            "normalise": np.asarray(float(bool(np.asarray(normalise).reshape(-1)[0])), dtype=np.float64).reshape(1),
            "coef": np.asarray(coef, dtype=np.float64),
            "intercept": np.asarray(intercept, dtype=np.float64),
            "alpha": np.asarray(alpha, dtype=np.float64),
        }
        self.meta = dict(meta or {})
        self.num_workers = max(1, int(num_workers))
        self._smile = None
        super().__init__(name, sha256_bytes(self.to_bytes()), SAMPLING_RATE)

    def features(self, signal: np.ndarray) -> np.ndarray:
        r"""The 88 eGeMAPSv02 functionals of a 16 kHz mono signal."""
        if self._smile is None:
            self._smile = _smile()
        return features(self._smile, signal, bool(self.arrays["normalise"][0]))

    def regress(self, features: np.ndarray) -> np.ndarray:
        r"""A/D/V from features of shape ``(n, 88)``; shape ``(n, 3)``."""
        a = self.arrays
        z = standardise(np.atleast_2d(features), a["mean"], a["scale"], float(a["clip"][0]))
        return z @ a["coef"].T + a["intercept"]

    def predict(self, signal: np.ndarray) -> np.ndarray:
        return self.regress(self.features(signal))[0]

    def predict_batch(self, signals: typing.Sequence[np.ndarray]) -> np.ndarray:
        r"""Features per signal (on :attr:`num_workers` threads), then one matrix product."""
        if not len(signals):
            return np.empty((0, len(DIMENSIONS)))
        signals = [_mono(s) for s in signals]
        if self.num_workers > 1:
            with concurrent.futures.ThreadPoolExecutor(self.num_workers) as pool:
                feats = list(pool.map(self.features, signals))
        else:
            feats = [self.features(s) for s in signals]
        return self.regress(np.stack(feats))

    def to_bytes(self) -> bytes:
        r"""The model as ``.npz`` bytes, identical for identical arrays.

        An infinite ``clip`` and a false ``normalise`` (format 1) are left
        out, so a format-1 file round-trips to its own bytes and keeps its hash.
        """
        arrays = dict(self.arrays)
        if np.isinf(arrays["clip"]).all():
            del arrays["clip"]
        if not arrays["normalise"].any():
            del arrays["normalise"]
        return deterministic_npz(arrays)

    def save(self, folder: str | os.PathLike) -> Path:
        r"""Write ``model.npz`` and ``model.json`` into ``folder`` (atomically); return the ``.npz``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "model.json", json.dumps(self.meta, indent=2, sort_keys=True).encode())
        # the .npz last: its presence marks a complete cache entry
        atomic_write(folder / "model.npz", self.to_bytes())
        return folder / "model.npz"

    @classmethod
    def from_file(cls, path: str | os.PathLike, name: str = "egemaps", **kwargs) -> EgemapsRegressor:
        r"""Load a model written by :meth:`save`."""
        path = Path(path)
        with np.load(path) as data:
            arrays = {k: data[k] for k in ("mean", "scale", "coef", "intercept", "alpha")}
            for key in ("clip", "normalise"):  # format 1 files have neither: no clipping, no normalisation
                if key in data.files:
                    arrays[key] = data[key]
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(name, meta=meta, **arrays, **kwargs)


def standardise(features: np.ndarray, mean: np.ndarray, scale: np.ndarray, clip: float = np.inf) -> np.ndarray:
    r"""``(features - mean) / scale``, NaN → 0 (the training mean), clipped to ``[-clip, clip]``.

    Examples:
        >>> standardise(np.array([[1.0, np.nan, -1e6]]), np.zeros(3), np.ones(3), 5.0).tolist()
        [[1.0, 0.0, -5.0]]

    """
    return np.clip(np.nan_to_num((features - mean) / scale), -clip, clip)


GAIN_RMS = 0.05
"""RMS (-26 dBFS) every signal is scaled to when gain normalisation is on."""


def normalise_gain(signal: np.ndarray) -> np.ndarray:
    r"""Zero mean and RMS :data:`GAIN_RMS`; silence stays (almost) silence.

    wav2vec2's feature extractor scales to unit variance; openSMILE
    reads its input as 16-bit PCM and clips above full scale, so the
    level chosen here is a conversational -26 dBFS with room for peaks.

    Examples:
        >>> x = normalise_gain(np.array([0.1, 0.3, 0.1, 0.3], dtype=np.float32))
        >>> (x / GAIN_RMS).round(3).tolist()
        [-1.0, 1.0, -1.0, 1.0]

    """
    signal = np.asarray(signal, dtype=np.float64)
    return (GAIN_RMS * (signal - signal.mean()) / np.sqrt(signal.var() + 1e-10)).astype(np.float32)


def features(smile, signal: np.ndarray, normalise: bool) -> np.ndarray:
    r"""The 88 functionals of a 16 kHz mono signal, optionally gain-normalised first."""
    signal = normalise_gain(signal) if normalise else np.asarray(signal, dtype=np.float32)
    return np.asarray(smile(signal, SAMPLING_RATE), dtype=np.float64).reshape(-1)


def _mono(signal: np.ndarray) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim == 2:
        signal = signal[0] if signal.shape[0] == 1 else signal.mean(axis=0)
    return signal


# --- fitting ---------------------------------------------------------------------------


def extract(
    evalset, num_workers: int | None = None, verbose: bool = True, normalise: bool = DEFAULT_NORMALISE
) -> np.ndarray:
    r"""eGeMAPSv02 functionals of every file of ``evalset``; shape ``(files, 88)``.

    Files are read, mixed down and resampled to 16 kHz by
    :class:`audinterface.Process`, which hands each signal to
    :func:`features` (gain-normalised first if ``normalise``).
    ``num_workers``: threads (openSMILE runs outside the GIL);
    default up to 4, as many as there are cores.
    """
    import audformat
    import audinterface

    num_workers = num_workers or min(4, os.cpu_count() or 1)
    if verbose:
        print(f"egemaps: extracting {FEATURE_SET} functionals of {len(evalset.files)} files ...", flush=True)
    start = time.monotonic()
    local = threading.local()  # one openSMILE instance per worker thread

    def process(signal, sampling_rate):
        if not hasattr(local, "smile"):
            local.smile = _smile()
        return features(local.smile, _mono(signal), normalise)

    interface = audinterface.Process(
        process_func=process,
        sampling_rate=SAMPLING_RATE,
        resample=True,
        channels=None,
        mixdown=True,
        num_workers=num_workers,
        multiprocessing=False,
    )
    index = audformat.filewise_index(list(evalset.files))
    result = interface.process_index(index, preserve_index=True)
    if verbose:
        print(f"egemaps: features done in {time.monotonic() - start:.1f} s", flush=True)
    return np.stack([np.asarray(row, dtype=np.float64) for row in result.to_list()])


def fit(
    evalset,
    *,
    name: str = "egemaps",
    alphas: typing.Sequence[float] = DEFAULT_ALPHAS,
    folds: int = 5,
    seed: int = 0,
    clip: float = DEFAULT_CLIP,
    normalise: bool = DEFAULT_NORMALISE,
    num_workers: int | None = None,
    verbose: bool = True,
) -> EgemapsRegressor:
    r"""Fit the regressor on a labelled :class:`benchmark.data.datasets.EvalSet`.

    Args:
        evalset: training split (gold labels on 0..1)
        name: name of the returned predictor
        alphas: ridge penalties to choose from
        folds: speaker-grouped CV folds for choosing the penalty
        seed: seeds the assignment of speakers to folds
        clip: clip standardised features to this many standard deviations
        normalise: gain-normalise each signal before extracting features
        num_workers: threads for feature extraction (default: up to 4);
            the returned predictor uses one unless told otherwise
        verbose: print progress

    """
    features = extract(evalset, num_workers, verbose, normalise)
    groups = speaker_groups(evalset)
    mean = np.nanmean(features, axis=0)
    scale = np.nanstd(features, axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    z = standardise(features, mean, scale, clip)
    n_dims = len(DIMENSIONS)
    coef = np.full((n_dims, z.shape[1]), np.nan)
    intercept = np.full(n_dims, np.nan)
    chosen = np.full(n_dims, np.nan)
    scores = {}
    for d, dim in enumerate(DIMENSIONS):
        if dim not in evalset.truth.columns:
            continue
        y = evalset.truth[dim].to_numpy(dtype=np.float64)
        ok = np.isfinite(y)
        if ok.sum() < 2:
            continue
        alpha, cv = choose_alpha(z[ok], y[ok], groups[ok], alphas, folds, seed)
        coef[d], intercept[d] = ridge(z[ok], y[ok], alpha)
        chosen[d] = alpha
        scores[dim] = cv
        if verbose:
            print(f"egemaps: {dim}: alpha {alpha:.3g}, CV CCC {cv:.3f} ({ok.sum()} files)", flush=True)
    meta = {
        "format": FORMAT,
        "feature_set": FEATURE_SET,
        "feature_names": list(_smile().feature_names),
        "dimensions": [d for d in DIMENSIONS if d in scores],
        "alpha": {d: float(chosen[i]) for i, d in enumerate(DIMENSIONS) if d in scores},
        "cv_ccc": scores,
        "params": {
            "alphas": [float(a) for a in alphas],
            "folds": int(folds),
            "seed": int(seed),
            "clip": float(clip),
            "normalise": bool(normalise),
        },
        "data": {**evalset.provenance(), "files": len(evalset.files)},
    }
    return EgemapsRegressor(
        name, mean, scale, coef, intercept, chosen, meta, clip=clip, normalise=normalise, num_workers=num_workers or 1
    )


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    r"""Closed-form ridge regression with an unpenalised intercept.

    Examples:
        >>> x = np.array([[0.0], [1.0], [2.0]]); y = np.array([1.0, 3.0, 5.0])
        >>> w, b = ridge(x, y, 1e-9)
        >>> round(float(w[0]), 6), round(float(b), 6)
        (2.0, 1.0)

    """
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc = x - x_mean
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return w, float(y_mean - x_mean @ w)


def choose_alpha(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    alphas: typing.Sequence[float],
    folds: int = 5,
    seed: int = 0,
) -> tuple[float, float]:
    r"""Penalty with the best CCC of pooled out-of-fold predictions, and that CCC.

    Folds split the unique ``groups`` (speakers) at random (seeded).
    All penalties share one SVD per fold. Ties go to the larger penalty.
    With fewer than two groups there is nothing to validate on, and the
    middle of ``alphas`` is taken.
    """
    alphas = np.sort(np.asarray(alphas, dtype=np.float64))
    unique = np.unique(groups)
    k = min(int(folds), len(unique))
    if k < 2:
        return float(alphas[len(alphas) // 2]), float("nan")
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(unique), np.arange(len(unique)) % k))
    fold = np.array([fold_of[g] for g in groups])
    oof = np.zeros((len(alphas), len(y)))
    for f in range(k):
        train, test = fold != f, fold == f
        x_mean, y_mean = x[train].mean(axis=0), y[train].mean()
        u, s, vt = np.linalg.svd(x[train] - x_mean, full_matrices=False)
        uty = u.T @ (y[train] - y_mean)
        for i, alpha in enumerate(alphas):
            w = vt.T @ (s / (s**2 + alpha) * uty)
            oof[i, test] = (x[test] - x_mean) @ w + y_mean
    scores = np.array([ccc(y, p) for p in oof])
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    best = len(alphas) - 1 - int(np.argmax(scores[::-1]))  # last maximum: the larger penalty
    return float(alphas[best]), float(scores[best])


def speaker_groups(evalset) -> np.ndarray:
    r"""Speaker of each file; files of unknown speaker form their own group."""
    files = list(evalset.files)
    if evalset.speaker is None:
        return np.array(files, dtype=object)
    speakers = evalset.speaker.reindex(evalset.files)
    return np.array([str(s) if isinstance(s, str) else f"file:{f}" for s, f in zip(speakers, files)], dtype=object)


# --- loading ---------------------------------------------------------------------------


def load(entry, registry=None) -> Predictor:
    r"""Loader for kind ``egemaps``.

    ``source`` is ``{path, sha256}``: a fitted ``model.npz`` (written by
    :meth:`EgemapsRegressor.save`, e.g. ``scripts/fit_teacher.py``), verified
    against ``sha256``; how it was fitted is in the ``model.json`` next to it.
    ``params``: ``num_workers`` only. Loading never fits: a fit's last bits
    follow the CPU's vector instructions (numpy and OpenBLAS pick kernels at
    run time), so a teacher fitted on each machine would be another teacher
    on each machine; the fitted file is the artefact.
    """
    params = dict(entry.params)
    fitting = sorted(set(params) - {"num_workers"})
    if fitting:
        raise ValueError(
            f"Model '{entry.name}': params {', '.join(fitting)} have no effect on a fitted model; remove them "
            "(fit with scripts/fit_teacher.py to change how it is fitted)."
        )
    path = entry.resolve(entry.source["path"])
    model = EgemapsRegressor.from_file(path, entry.name, num_workers=int(params.get("num_workers") or 1))
    if model.artifact_hash != entry.source["sha256"]:
        raise ValueError(
            f"Model '{entry.name}': {path} has sha256 {model.artifact_hash}, models.yaml pins "
            f"{entry.source['sha256']}; restore the file or update source.sha256 (a changed model is a new result)."
        )
    return model


# --- files -----------------------------------------------------------------------------


def deterministic_npz(arrays: dict[str, np.ndarray]) -> bytes:
    r"""``np.savez`` without time stamps: same arrays, same bytes, same hash.

    Examples:
        >>> a = {"x": np.arange(3.0)}
        >>> deterministic_npz(a) == deterministic_npz(a)
        True
        >>> np.load(io.BytesIO(deterministic_npz(a)))["x"].tolist()
        [0.0, 1.0, 2.0]

    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            array_bytes = io.BytesIO()
            np.lib.format.write_array(array_bytes, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(info, array_bytes.getvalue())
    return buffer.getvalue()


def sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
