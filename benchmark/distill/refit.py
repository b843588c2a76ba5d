"""Closed-form refit of a trained student's output layer on whole, clean files.

The files are the student's training files and, where given, more unlabeled
audio (``--refit-data``; the demo's ``demo-refit``): the head has hundreds
of inputs (888 for Wav2Small), and its fit gains from every file.

Gradient steps leave the last linear layer (``head``) of a student short of
the least-squares fit to the teacher's targets on its own features: a run
has a few hundred noisy steps, each fitting a CCC over one batch. Once the
network is trained, the features it feeds its head are fixed, and the best
head for them is a ridge regression with a closed form. This module
computes it on the training files, whole and clean, with the teacher's
outputs for them — the condition the benchmark scores in — for a few
penalties, rescales each output so its spread matches the teacher's (which
is what CCC rewards), and picks the penalty on the held-out files, where
cross-validation over training data prefers penalties too small for them.
Of penalties within :data:`TOLERANCE` of the best, the largest is taken: a
smaller one leans on directions of the features that 8-bit activations
blur (measured on the committed Wav2Small: test-1 mean CCC 0.770 in fp32
and 0.742 in int8 at 1e-4, 0.791 and 0.789 at 1e-2). Only the head's
weights change: the architecture, its parameter count and the exported
graph stay the same.

Why whole files and not the training crops (measured on the committed
Wav2Small's network, ``docs/distillation.md``): a crop is cut to at most
4 s and a third of them are augmented, while the benchmark scores whole,
clean files; fitted on the 900 whole training files the head agrees with
the teacher better on the held-out files (mean CCC 0.776 against 0.766)
and on msppodcast test-2 (0.772 against 0.755) than fitted on the 2,698
crops, three times as many but further from that condition, or on both.

The penalty is on the raw features, with one common scale, not on
standardised ones: standardising gives a feature that hardly varies in
training a large weight, and an input on which it does vary then sends
the output far off the scale (measured: one test-1 file sent a
standardised refit of a Wav2Small to arousal 14).
"""

from __future__ import annotations

import dataclasses
import threading
import typing

import numpy as np
import torch

from benchmark import DIMENSIONS, ccc_columns
from benchmark.distill.validation import forward_each

ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1)
r"""Ridge penalties tried, relative to the mean square of the centred features."""
TOLERANCE = 0.005
r"""Held-out mean CCC a larger penalty may lose against the best one and still be chosen."""
FOLDS = 5
r"""Cross-validation folds over training files, used to choose the penalty when no files are held out."""


@dataclasses.dataclass(frozen=True)
class HeadFit:
    r"""A fitted output layer.

    Attributes:
        weight: ``(outputs, features)``, as :class:`torch.nn.Linear` stores it
        bias: ``(outputs,)``
        alpha: the chosen penalty
        scores: mean CCC of every penalty on the files that chose it

    """

    weight: np.ndarray
    bias: np.ndarray
    alpha: float
    scores: dict[float, float]


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


def fit(features: np.ndarray, targets: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Ridge fit with outputs scaled to the targets' spread: ``W`` ``(p, k)`` and ``b`` ``(k,)``."""
    weight, bias = ridge(features, targets, alpha)
    return match_spread(np.asarray(features, dtype=np.float64) @ weight + bias, np.asarray(targets), weight, bias)


def mean_ccc(targets: np.ndarray, prediction: np.ndarray) -> float:
    r"""CCC averaged over the columns."""
    return ccc_columns(targets, prediction)["mean"]


def choose(scores: dict[float, float], tolerance: float = TOLERANCE) -> float:
    r"""The largest penalty whose score is within ``tolerance`` of the best.

    Examples:
        >>> choose({1e-4: 0.780, 1e-3: 0.790, 1e-2: 0.787, 1e-1: 0.770})
        0.01

    """
    best = max(scores.values())
    return max(a for a, v in scores.items() if v >= best - tolerance)


def fit_head(
    features: np.ndarray,
    targets: np.ndarray,
    groups: np.ndarray,
    heldout: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    alphas: typing.Sequence[float] = ALPHAS,
    seed: int = 0,
) -> HeadFit:
    r"""Ridge fit of an output layer, spread matched, penalty chosen on held-out files.

    Args:
        features: the head's inputs, ``(samples, features)``
        targets: the teacher's outputs, ``(samples, outputs)``
        groups: the file of every sample (for the fallback below)
        heldout: ``(features, targets)`` of held-out files that choose the
            penalty (:func:`choose`); without them, cross-validation over
            :data:`FOLDS` folds of training files does (a file's samples stay in
            one fold; files assigned at random, seeded)
        alphas: penalties to try
        seed: seed of the fold assignment

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((200, 5))
        >>> y = x @ np.array([[1.0], [0.5], [0.0], [0.0], [-1.0]]) + 0.1 * rng.standard_normal((200, 1))
        >>> head = fit_head(x, y, np.arange(200) // 2)
        >>> (np.round(head.weight, 1) + 0.0).tolist(), head.alpha
        ([[1.0, 0.5, 0.0, 0.0, -1.0]], 0.1)

    """
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    scores: dict[float, float] = {}
    if heldout is not None:
        x_held, y_held = (np.asarray(a, dtype=np.float64) for a in heldout)
        for alpha in alphas:
            w, b = fit(features, targets, alpha)
            scores[float(alpha)] = mean_ccc(y_held, x_held @ w + b)
    else:
        files = np.unique(groups)
        assignment = dict(zip(files.tolist(), np.random.default_rng(seed).integers(0, FOLDS, len(files)).tolist()))
        fold = np.array([assignment[g] for g in np.asarray(groups).tolist()])
        for alpha in alphas:
            prediction = np.zeros_like(targets)
            for k in np.unique(fold):
                test = fold == k
                w, b = fit(features[~test], targets[~test], alpha) if (~test).any() else fit(features, targets, alpha)
                prediction[test] = features[test] @ w + b
            scores[float(alpha)] = mean_ccc(targets, prediction)
    finite = {a: v for a, v in scores.items() if np.isfinite(v)}
    alpha = choose(finite) if finite else float(alphas[-1])
    w, b = fit(features, targets, alpha)
    return HeadFit(weight=w.T.copy(), bias=b.copy(), alpha=alpha, scores=scores)


def has_linear_head(module: torch.nn.Module) -> bool:
    r"""Whether ``module`` has a :class:`torch.nn.Linear` ``head`` that a refit can replace.

    Examples:
        >>> has_linear_head(torch.nn.Module()), has_linear_head(torch.nn.ModuleDict({"head": torch.nn.Linear(2, 3)}))
        (False, True)

    """
    return isinstance(getattr(module, "head", None), torch.nn.Linear)


def head_inputs(module: torch.nn.Module, signals: typing.Sequence[np.ndarray], device: str = "cpu") -> np.ndarray:
    r"""What ``module.head`` receives for each whole signal (a row each), in eval mode.

    Signals run a torch thread each (:func:`benchmark.distill.train.forward_each`);
    a lazy sequence (:class:`~benchmark.distill.audio.AudioFiles`) is
    read one file at a time.
    """
    seen = threading.local()  # the hook runs in the thread of its forward pass
    hook = module.head.register_forward_pre_hook(lambda _, args: setattr(seen, "inputs", args[0]))
    try:
        captured = forward_each(module, signals, lambda _: seen.inputs.double().cpu().numpy(), device)
    finally:
        hook.remove()
    return np.concatenate(captured) if captured else np.empty((0, module.head.in_features))


@dataclasses.dataclass(frozen=True)
class HeadData:
    r"""What a refit of a student's ``head`` is fitted on: computed once, then refitted with any penalty.

    Attributes:
        features: the head's inputs for the training files, ``(files, features)``
        targets: the teacher's outputs for them, ``(files, len(dims))``
        files: the training files' names
        heldout: ``(features, targets)`` of the held-out files, or ``None``
        dims: the head's rows that are refitted (the dimensions the teacher predicts)

    """

    features: np.ndarray
    targets: np.ndarray
    files: np.ndarray
    heldout: tuple[np.ndarray, np.ndarray] | None
    dims: list[int]


def head_data(
    module: torch.nn.Module,
    training,
    dims: typing.Sequence[int],
    heldout=None,
    device: str = "cpu",
) -> HeadData:
    r"""The head's inputs and the teacher's targets on the training files (and on the held-out files).

    Args:
        module: a trained student with a :class:`torch.nn.Linear` ``head``
            whose outputs are A/D/V
        training: a :class:`benchmark.distill.train.ValidationSet` of the
            whole, clean training files with the teacher's outputs (the
            dimensions ``dims``), which the head is fitted on
        dims: the dimensions the teacher predicts
        heldout: the same for held-out files, which choose the penalty
            (``None`` or empty: cross-validation over the training files)
        device: torch device of ``module``

    Raises:
        ValueError: if the student has no linear ``head``

    """
    if not has_linear_head(module):
        raise ValueError(f"{type(module).__name__} has no linear output layer 'head' to refit.")
    dims = list(dims)
    names = [DIMENSIONS[d] for d in dims]

    def inputs(files) -> tuple[np.ndarray, np.ndarray]:
        return head_inputs(module, files.signals, device), files.reference[names].to_numpy()

    features, targets = inputs(training)
    held = inputs(heldout) if heldout is not None and len(heldout) else None
    return HeadData(
        features=features,
        targets=targets,
        files=np.asarray(training.reference.index, dtype=str),
        heldout=held,
        dims=dims,
    )


def refit_from(
    module: torch.nn.Module, data: HeadData, *, alphas: typing.Sequence[float] = ALPHAS, seed: int = 0
) -> dict:
    r"""Replace the rows ``data.dims`` of ``module.head`` by their fit (:func:`fit_head`) on ``data``.

    Args:
        module: the student ``data`` was computed for (the other rows of its head are left as they are)
        data: :func:`head_data`
        alphas: penalties to choose from (one: that penalty)
        seed: seed of the fold assignment of the cross-validation without held-out files

    Returns:
        a JSON-friendly report: files fitted on, features, the chosen
        penalty, the mean CCC of every penalty and where it was measured

    """
    fitted = fit_head(data.features, data.targets, data.files, data.heldout, alphas=alphas, seed=seed)
    head = module.head
    with torch.no_grad():
        head.weight[data.dims] = torch.from_numpy(fitted.weight).to(head.weight)
        head.bias[data.dims] = torch.from_numpy(fitted.bias).to(head.bias)
    where = (
        f"{len(data.heldout[0])} held-out files"
        if data.heldout is not None
        else f"{FOLDS}-fold cross-validation over training files"
    )
    return {
        "fitted_on": f"{len(data.features)} whole training files",
        "features": int(data.features.shape[1]),
        "alpha": fitted.alpha,
        "chosen_on": where,
        "mean_ccc_by_alpha": {str(a): round(v, 4) for a, v in fitted.scores.items()},
    }


def refit_head(
    module: torch.nn.Module,
    training,
    dims: typing.Sequence[int],
    heldout=None,
    *,
    alphas: typing.Sequence[float] = ALPHAS,
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    r"""Replace the rows of ``module.head`` for ``dims`` by their closed-form fit on the training files.

    :func:`head_data`, then :func:`refit_from` (arguments as there).

    Raises:
        ValueError: if the student has no linear ``head``

    """
    return refit_from(module, head_data(module, training, dims, heldout, device), alphas=alphas, seed=seed)
