"""The eGeMAPS teacher fitted on synthetic A/D/V data and on real categorical speech together.

EmoDB's emotions carry no A/D/V ratings, so each is placed on each
dimension by :mod:`benchmark.data.categories` and given the numeric
target :data:`TARGETS` of its side: ``high`` 0.75, ``low`` 0.25 (a
quarter of the 0..1 scale either side of its middle, where the demo
corpus's gold labels spread most), ``neutral`` 0.5 on every dimension.
A category placed on no side of a dimension (e.g. disgust on arousal,
happiness on dominance) gives no target there: guessing its place would
teach the regressor our guess. The real files join the synthetic ones
with a per-file weight (:func:`weighted_ridge`), chosen per dimension by
speaker-grouped cross-validation on EmoDB's train speakers (see
``docs/research/teacher-real-speech.md``).
"""

from __future__ import annotations

import typing

import numpy as np

from benchmark import DIMENSIONS
from benchmark.data.categories import placement
from benchmark.metrics import ccc_numpy as ccc
from benchmark.models.egemaps import (
    DEFAULT_ALPHAS,
    DEFAULT_CLIP,
    FEATURE_SET,
    FORMAT,
    SAMPLING_RATE,
    EgemapsRegressor,
    extract,
    speaker_groups,
    standardise,
)

TARGETS = {"high": 0.75, "low": 0.25, "neutral": 0.5}
"""Numeric A/D/V target of a category's side (``neutral``: the neutral category, every dimension)."""


def category_targets(categories: typing.Sequence[str]) -> np.ndarray:
    r"""Targets of shape ``(n, 3)`` (arousal, dominance, valence); NaN where a category has no side.

    Examples:
        >>> category_targets(["anger", "neutral", "disgust"]).tolist()
        [[0.75, 0.75, 0.25], [0.5, 0.5, 0.5], [nan, nan, 0.25]]

    """
    places, unknown = placement(sorted(set(categories)))
    if unknown:
        raise ValueError(f"categories {unknown} have no place on A/D/V; map them in benchmark.data.categories")
    y = np.full((len(categories), len(DIMENSIONS)), np.nan)
    for i, name in enumerate(categories):
        for d, dim in enumerate(DIMENSIONS):
            side = places[name].get(dim)
            if side:
                y[i, d] = TARGETS[side]
            elif not places[name]:  # placed nowhere: the neutral middle
                y[i, d] = TARGETS["neutral"]
    return y


def weighted_ridge(x: np.ndarray, y: np.ndarray, weight: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    r"""Ridge regression minimising ``Σ wᵢ (yᵢ − xᵢ·c − b)² + α |c|²`` with an unpenalised intercept.

    Examples:
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([1.0, 3.0, 5.0, 0.0])
        >>> c, b = weighted_ridge(x, y, np.array([1.0, 1.0, 1.0, 0.0]), 1e-9)
        >>> round(float(c[0]), 6), round(float(b), 6)
        (2.0, 1.0)

    """
    weight = np.asarray(weight, dtype=np.float64)
    x_mean = weight @ x / weight.sum()
    y_mean = float(weight @ y / weight.sum())
    root = np.sqrt(weight)[:, None]
    xc = (x - x_mean) * root
    coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ ((y - y_mean) * root[:, 0]))
    return coef, float(y_mean - x_mean @ coef)


def fit_mixed(
    synthetic: tuple[np.ndarray, np.ndarray],
    real: tuple[np.ndarray, np.ndarray],
    weight: typing.Sequence[float],
    alpha: typing.Sequence[float],
    *,
    name: str = "egemaps-teacher-real",
    meta: dict | None = None,
    clip: float = DEFAULT_CLIP,
) -> EgemapsRegressor:
    r"""One ridge per dimension on synthetic ``(features, labels)`` and real ``(features, targets)``.

    Features are standardised by the synthetic files' mean and
    deviation (those the demo teacher uses); a real file counts
    ``weight[d]`` times a synthetic one in dimension ``d``; NaN labels
    or targets leave a file out of that dimension. The predictor
    gain-normalises its input, as the features here must have been.
    """
    xs, ys = (np.asarray(a, dtype=np.float64) for a in synthetic)
    xr, yr = (np.asarray(a, dtype=np.float64) for a in real)
    mean = np.nanmean(xs, axis=0)
    scale = np.nanstd(xs, axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    zs, zr = standardise(xs, mean, scale, clip), standardise(xr, mean, scale, clip)
    coef = np.zeros((len(DIMENSIONS), xs.shape[1]))
    intercept = np.zeros(len(DIMENSIONS))
    for d in range(len(DIMENSIONS)):
        oks, okr = np.isfinite(ys[:, d]), np.isfinite(yr[:, d])
        x = np.vstack([zs[oks], zr[okr]])
        y = np.concatenate([ys[oks, d], yr[okr, d]])
        w = np.concatenate([np.ones(oks.sum()), np.full(okr.sum(), float(weight[d]))])
        coef[d], intercept[d] = weighted_ridge(x, y, w, float(alpha[d]))
    return EgemapsRegressor(name, mean, scale, coef, intercept, alpha, meta, clip=clip, normalise=True)


WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
"""Per-file weights of a real file (a synthetic file weighs 1) to choose from."""

TOLERANCE = {"arousal": 0.024, "dominance": 0.050, "valence": 0.046}
r"""Largest allowed fall of the synthetic cross-validated CCC per dimension.

Half the width of the committed demo teacher's 95 % CCC interval on the
demo msppodcast test-1 split (arousal .810–.858, dominance .504–.603,
valence .592–.683): a fall within it is within what resampling the
test files moves.
"""


def cross_validate(
    synthetic: tuple[np.ndarray, np.ndarray, np.ndarray],
    real: tuple[np.ndarray, np.ndarray, np.ndarray],
    real_auc: typing.Callable[[np.ndarray, int], float],
    weights: typing.Sequence[float] = WEIGHTS,
    alphas: typing.Sequence[float] = DEFAULT_ALPHAS,
    seed: int = 0,
    clip: float = DEFAULT_CLIP,
) -> np.ndarray:
    r"""Out-of-fold scores of shape ``(3, weights, alphas, 2)``: the real files' AUC, the synthetic CCC.

    ``synthetic`` and ``real`` are ``(features, labels or targets,
    speakers)``. Fold ``k`` holds out the ``k``-th real speaker and a
    seeded share of the synthetic speakers (as many folds as real
    speakers), so no speaker is in training and validation at once.
    ``real_auc(predictions, d)`` scores the pooled out-of-fold
    predictions of every real file in dimension ``d``.
    """
    xs, ys, gs = synthetic
    xr, yr, gr = real
    speakers = list(np.unique(gr))
    k = len(speakers)
    unique = np.unique(gs)
    fold_of = dict(zip(np.random.default_rng(seed).permutation(unique), np.arange(len(unique)) % k))
    fs = np.array([fold_of[g] for g in gs])
    fr = np.array([speakers.index(g) for g in gr])
    oof_s = np.full((len(DIMENSIONS), len(weights), len(alphas), len(xs)), np.nan)
    oof_r = np.full((len(DIMENSIONS), len(weights), len(alphas), len(xr)), np.nan)
    for f in range(k):
        ts, tr = fs != f, fr != f
        mean, scale = np.nanmean(xs[ts], axis=0), np.nanstd(xs[ts], axis=0)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        zs, zr = standardise(xs, mean, scale, clip), standardise(xr, mean, scale, clip)
        for d in range(len(DIMENSIONS)):
            oks, okr = ts & np.isfinite(ys[:, d]), tr & np.isfinite(yr[:, d])
            x = np.vstack([zs[oks], zr[okr]])
            y = np.concatenate([ys[oks, d], yr[okr, d]])
            for wi, w in enumerate(weights):
                weight = np.concatenate([np.ones(oks.sum()), np.full(okr.sum(), float(w))])
                for ai, alpha in enumerate(alphas):
                    c, b = weighted_ridge(x, y, weight, float(alpha))
                    oof_s[d, wi, ai, fs == f] = zs[fs == f] @ c + b
                    oof_r[d, wi, ai, fr == f] = zr[fr == f] @ c + b
    scores = np.zeros((len(DIMENSIONS), len(weights), len(alphas), 2))
    for d in range(len(DIMENSIONS)):
        ok = np.isfinite(ys[:, d])
        for wi in range(len(weights)):
            for ai in range(len(alphas)):
                scores[d, wi, ai] = real_auc(oof_r[d, wi, ai], d), ccc(ys[ok, d], oof_s[d, wi, ai, ok])
    return scores


def choose(
    scores: np.ndarray, weights: typing.Sequence[float], alphas: typing.Sequence[float], tolerance=TOLERANCE
) -> tuple[list[float], list[float]]:
    r"""Per dimension the weight and penalty of the best real AUC whose synthetic CCC falls within tolerance.

    The fall is measured from the best synthetic CCC without real files
    (weight 0); that choice is always allowed, so a dimension where real
    speech only costs keeps weight 0. Ties go to the smaller weight.

    Examples:
        >>> s = np.zeros((3, 2, 1, 2)); s[:, 0, 0] = (0.5, 0.8); s[:, 1, 0] = (0.7, 0.79)
        >>> s[2, 1, 0] = (0.9, 0.7)  # valence: real speech costs too much synthetic CCC
        >>> choose(s, [0.0, 1.0], [1.0])
        ([1.0, 1.0, 0.0], [1.0, 1.0, 1.0])

    """
    chosen_w, chosen_a = [], []
    for d, dim in enumerate(DIMENSIONS):
        base = np.nanmax(scores[d, 0, :, 1])
        allowed = (scores[d, :, :, 1] >= base - tolerance[dim]) | (
            (np.arange(len(weights)) == 0)[:, None] & (scores[d, :, :, 1] == base)
        )
        auc = np.where(allowed, scores[d, :, :, 0], -np.inf)
        wi, ai = np.unravel_index(int(np.argmax(auc)), auc.shape)
        chosen_w.append(float(weights[wi]))
        chosen_a.append(float(alphas[ai]))
    return chosen_w, chosen_a


def emodb_data(root, num_workers: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Features, targets and speakers of EmoDB's train-speaker files in a release folder (test speakers never read).

    Speakers are named as in the file names (``"03"``): their sorted order
    pairs each with a share of the synthetic speakers in
    :func:`cross_validate`, so the names decide the folds.
    """
    from benchmark.analyses.real_speech_check import read_signal
    from benchmark.data.releases.emodb import train_speaker_files

    files = train_speaker_files(root)
    # features of the gain-normalised signal, as the teacher sees it
    model = EgemapsRegressor(
        "features", np.zeros(88), np.ones(88), np.zeros((3, 88)), np.zeros(3), np.ones(3), normalise=True
    )
    x = np.stack([model.features(read_signal(s, SAMPLING_RATE)[0]) for s in files["source"]])
    return x, category_targets(files["emotion"].tolist()), files["speaker"].map("{:02d}".format).to_numpy()


def real_auc_of(targets: np.ndarray) -> typing.Callable[[np.ndarray, int], float]:
    r"""Scorer for :func:`cross_validate`: AUC of files with a high target against those with a low one."""
    from benchmark.analyses.consistency import auc

    def score(pred: np.ndarray, d: int) -> float:
        high, low = targets[:, d] == TARGETS["high"], targets[:, d] == TARGETS["low"]
        return float(auc(pred[high], pred[low]))

    return score


def fit_with_real(evalset, root, *, num_workers: int | None = None, name: str = "egemaps-teacher-real"):
    r"""The teacher on a labelled synthetic split and EmoDB's train speakers, weights and penalties by CV."""
    xs = extract(evalset, num_workers, normalise=True)
    ys = evalset.truth.reindex(evalset.files)[list(DIMENSIONS)].to_numpy(dtype=np.float64)
    xr, yr, gr = emodb_data(root)
    return fit_from_features((xs, ys, speaker_groups(evalset)), (xr, yr, gr), evalset.provenance(), name=name)


def fit_from_features(synthetic, real, provenance: dict, *, name: str = "egemaps-teacher-real") -> EgemapsRegressor:
    r"""Cross-validate, choose (:func:`choose`) and fit (:func:`fit_mixed`) from extracted features."""
    scores = cross_validate(synthetic, real, real_auc_of(real[1]))
    weight, alpha = choose(scores, WEIGHTS, DEFAULT_ALPHAS)
    index = [(WEIGHTS.index(w), list(DEFAULT_ALPHAS).index(a)) for w, a in zip(weight, alpha)]
    meta = {
        "format": FORMAT,
        "feature_set": FEATURE_SET,
        "dimensions": list(DIMENSIONS),
        "alpha": dict(zip(DIMENSIONS, alpha)),
        "real_weight": dict(zip(DIMENSIONS, weight)),
        "cv": {
            dim: {"real_auc": float(scores[d, i, j, 0]), "synthetic_ccc": float(scores[d, i, j, 1])}
            for d, (dim, (i, j)) in enumerate(zip(DIMENSIONS, index))
        },
        "params": {"weights": list(WEIGHTS), "alphas": list(DEFAULT_ALPHAS), "tolerance": TOLERANCE},
        "targets": TARGETS,
        "data": {**provenance, "files": len(synthetic[0])},
        "real_data": {"corpus": "emodb (original release)", "speakers": sorted(set(real[2])), "files": len(real[0])},
    }
    return fit_mixed(synthetic[:2], real[:2], weight, alpha, name=name, meta=meta)
