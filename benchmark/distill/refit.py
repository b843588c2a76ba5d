"""Closed-form refit of a trained student's output layer on all its training crops.

Gradient steps leave the last linear layer (``head``) of a student far from
the least-squares fit to the teacher's targets on its own features: a run
has a few hundred noisy steps, each fitting a CCC over one batch. Once the
network is trained, the features it feeds its head are fixed, and the best
head for them is a ridge regression with a closed form. This module
computes it over every usable training crop, picks the penalty by
cross-validation over training files (never the held-out files), and
rescales each output so its spread matches the teacher's, which is what
CCC rewards. Only the head's weights change: the architecture, its
parameter count and the exported graph stay the same.

The ridge penalty is on the raw features, with one common scale, not on
standardised ones: standardising gives a feature that hardly varies in
training a large weight, and an input on which it does vary then sends
the output far off the scale (measured: one test-1 file sent a
standardised refit of a Wav2Small to arousal 14).
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import torch

ALPHAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
r"""Ridge penalties tried, relative to the mean square of the centred features."""
FOLDS = 5
BATCH = 32


@dataclasses.dataclass(frozen=True)
class HeadFit:
    r"""A fitted output layer.

    Attributes:
        weight: ``(outputs, features)``, as :class:`torch.nn.Linear` stores it
        bias: ``(outputs,)``
        alpha: the chosen penalty (one of :data:`ALPHAS`)
        cv_ccc: cross-validated CCC of every penalty, per output: ``{alpha: [ccc, ...]}``

    """

    weight: np.ndarray
    bias: np.ndarray
    alpha: float
    cv_ccc: dict[float, list[float]]


def ridge(features: np.ndarray, targets: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Ridge regression with an unpenalised intercept and a penalty relative to the features' scale.

    Minimises ``|Y − XW − b|² + alpha · n · s² · |W|²``, where ``s²`` is the
    mean square of the centred features, so ``alpha`` does not depend on
    their units.

    Args:
        features: ``(n, p)``
        targets: ``(n, k)``
        alpha: penalty

    Returns:
        ``W`` ``(p, k)`` and ``b`` ``(k,)``

    Examples:
        >>> x = np.arange(10.0)[:, None]
        >>> w, b = ridge(x, 2 * x + 1, 1e-9)
        >>> round(float(w[0, 0]), 6), round(float(b[0]), 6)
        (2.0, 1.0)

    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    mean_x, mean_y = x.mean(0), y.mean(0)
    xc = x - mean_x
    scale = float((xc**2).mean()) or 1.0
    gram = xc.T @ xc + alpha * len(x) * scale * np.eye(x.shape[1])
    weight = np.linalg.solve(gram, xc.T @ (y - mean_y))
    return weight, mean_y - mean_x @ weight


def match_spread(prediction: np.ndarray, targets: np.ndarray, weight: np.ndarray, bias: np.ndarray):
    r"""Scale a linear fit's outputs about their mean so their spread matches the targets'.

    A least-squares fit shrinks its outputs towards the mean by the
    correlation it reaches; CCC penalises that, and is highest for a
    linear predictor when both spreads agree.

    Returns:
        the rescaled ``(weight, bias)``

    Examples:
        >>> w, b = match_spread(np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]]), np.ones((1, 1)), np.zeros(1))
        >>> float(w[0, 0]), float(b[0])
        (2.0, -0.5)

    """
    spread = prediction.std(0)
    factor = np.where(spread > 0, targets.std(0) / np.where(spread > 0, spread, 1.0), 1.0)
    centre = prediction.mean(0)
    return weight * factor, bias * factor + centre * (1 - factor)


def fit_head(
    features: np.ndarray,
    targets: np.ndarray,
    groups: np.ndarray,
    *,
    alphas: typing.Sequence[float] = ALPHAS,
    folds: int = FOLDS,
    seed: int = 0,
) -> HeadFit:
    r"""Ridge fit of an output layer, penalty by cross-validation over groups, spread matched.

    Args:
        features: the head's inputs, ``(crops, features)``
        targets: the teacher's outputs, ``(crops, outputs)``
        groups: the file of every crop: a file's crops stay in one fold
        alphas: penalties to try
        folds: cross-validation folds (files are assigned at random, seeded)
        seed: seed of the fold assignment

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((200, 5))
        >>> y = x @ np.array([[1.0], [0.5], [0.0], [0.0], [-1.0]]) + 0.1 * rng.standard_normal((200, 1))
        >>> fit = fit_head(x, y, np.arange(200) // 2)
        >>> (np.round(fit.weight, 1) + 0.0).tolist(), fit.alpha
        ([[1.0, 0.5, 0.0, 0.0, -1.0]], 1e-06)

    """
    from benchmark.distill.train import ccc

    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    files = np.unique(groups)
    assignment = dict(zip(files.tolist(), np.random.default_rng(seed).integers(0, folds, len(files)).tolist()))
    fold = np.array([assignment[g] for g in np.asarray(groups).tolist()])
    scores: dict[float, list[float]] = {}
    for alpha in alphas:
        prediction = np.zeros_like(targets)
        for k in range(folds):
            test = fold == k
            if not test.any() or test.all():
                continue
            w, b = ridge(features[~test], targets[~test], alpha)
            prediction[test] = features[test] @ w + b
        scores[float(alpha)] = [float(ccc(targets[:, j], prediction[:, j])) for j in range(targets.shape[1])]
    alpha = max(scores, key=lambda a: np.nanmean(scores[a]) if np.isfinite(scores[a]).any() else -np.inf)
    w, b = ridge(features, targets, alpha)
    w, b = match_spread(features @ w + b, targets, w, b)
    return HeadFit(weight=w.T.copy(), bias=b.copy(), alpha=alpha, cv_ccc=scores)


def head_inputs(module: torch.nn.Module, shards, records: np.ndarray, device: str = "cpu") -> np.ndarray:
    r"""What ``module.head`` receives for every crop of ``records``, in eval mode.

    Crops of one length are run together (no padding enters a crop's features).
    """
    captured: list[torch.Tensor] = []
    hook = module.head.register_forward_pre_hook(lambda _, args: captured.append(args[0].detach().double().cpu()))
    out = np.empty((len(records), module.head.in_features), dtype=np.float64)
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            for length in np.unique(shards.length[records]):
                same = np.flatnonzero(shards.length[records] == length)
                for i in range(0, len(same), BATCH):
                    rows = same[i : i + BATCH]
                    captured.clear()
                    module(torch.from_numpy(shards.batch(records[rows])).to(device))
                    out[rows] = captured[0].numpy()
    finally:
        hook.remove()
        module.train(was_training)
    return out


def refit_head(
    module: torch.nn.Module,
    shards,
    usable: np.ndarray,
    dims: typing.Sequence[int],
    *,
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    r"""Replace the rows of ``module.head`` for ``dims`` by their closed-form fit on the usable crops.

    Args:
        module: a trained student with a :class:`torch.nn.Linear` ``head``
            whose outputs are A/D/V (the other rows are left as they are)
        shards: :class:`benchmark.distill.annotate.Shards` with the teacher's targets
        usable: per record, whether it was trained on (in range)
        dims: the dimensions the teacher predicts
        seed: seed of the fold assignment
        device: torch device of ``module``

    Returns:
        a JSON-friendly report: crops, features, chosen penalty,
        cross-validated CCC per penalty

    Raises:
        ValueError: if the student has no linear ``head``

    """
    head = getattr(module, "head", None)
    if not isinstance(head, torch.nn.Linear):
        raise ValueError(f"{type(module).__name__} has no linear output layer 'head' to refit.")
    records = np.flatnonzero(np.asarray(usable, dtype=bool))
    dims = list(dims)
    features = head_inputs(module, shards, records, device)
    fit = fit_head(features, shards.targets[records][:, dims], shards.file_index[records], seed=seed)
    with torch.no_grad():
        head.weight[dims] = torch.from_numpy(fit.weight).to(head.weight)
        head.bias[dims] = torch.from_numpy(fit.bias).to(head.bias)
    return {
        "crops": int(len(records)),
        "files": int(len(np.unique(shards.file_index[records]))),
        "features": int(features.shape[1]),
        "alpha": fit.alpha,
        "cv_ccc": {str(a): [round(v, 4) for v in s] for a, s in fit.cv_ccc.items()},
    }
