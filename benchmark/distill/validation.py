"""Scoring a student in torch against whole, clean files with reference A/D/V (:class:`ValidationSet`)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import typing

import numpy as np
import pandas as pd
import torch

from benchmark import DIMENSIONS, ccc_finite

T = typing.TypeVar("T")


@dataclasses.dataclass
class ValidationSet:
    r"""Whole, clean files with reference A/D/V: the student is scored against it.

    Attributes:
        name: ``'teacher'`` (held-out pool files, teacher outputs) or ``'gold'`` (human labels)
        signals: mono 16 kHz float32 signals, in :attr:`reference` order
            (whole files: :class:`~benchmark.distill.audio.AudioFiles`, read as they are used)
        reference: index: files; columns: the dimensions to score

    """

    name: str
    signals: typing.Sequence[np.ndarray]
    reference: pd.DataFrame

    def __len__(self) -> int:
        return len(self.signals)


def per_file(fn: typing.Callable[[typing.Any], T], items: typing.Sequence, device: str = "cpu") -> list[T]:
    r"""``[fn(item) for item in items]``, on the CPU one item per torch thread.

    A small student leaves its intra-op threads idle on one short signal at a
    time: with two threads, two files at once on one thread each are 1.4 times
    as fast as one file on two (measured: 100 files of 1.5–5 s through
    Wav2Small, 2.4 s against 3.2–3.6 s). Every item runs on a single intra-op
    thread in any case, so the results do not depend on the number of threads
    or on scheduling. ``fn`` runs in worker threads: grad mode is per thread,
    so it enters :func:`torch.inference_mode` itself.

    Args:
        fn: work on one item
        items: the items
        device: torch device; anything but the CPU runs the items in order

    Examples:
        >>> per_file(lambda x: 2 * x, [1, 2, 3])
        [2, 4, 6]

    """
    threads = torch.get_num_threads()
    if torch.device(device).type != "cpu":
        return [fn(item) for item in items]
    torch.set_num_threads(1)  # read by worker threads when they first run an op
    try:
        if threads < 2 or len(items) < 2:
            return [fn(item) for item in items]
        with concurrent.futures.ThreadPoolExecutor(min(threads, len(items))) as pool:
            # indices, not items: a lazy sequence (AudioFiles) is read in the worker, one item at a time
            return list(pool.map(lambda i: fn(items[i]), range(len(items))))
    finally:
        torch.set_num_threads(threads)


def forward_each(
    module: torch.nn.Module,
    signals: typing.Sequence[np.ndarray],
    take: typing.Callable[[torch.Tensor], T],
    device: str = "cpu",
) -> list[T]:
    r"""``take(module(signal))`` for each whole signal on its own, in eval mode (:func:`per_file`).

    No padding enters a result. ``take`` runs in the thread of its forward
    pass, in inference mode; the module's train/eval mode is restored.
    """
    was_training = module.training
    module.eval()

    def one(signal: np.ndarray) -> T:
        with torch.inference_mode():
            return take(module(torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))[None].to(device)))

    try:
        return per_file(one, signals, device)
    finally:
        module.train(was_training)


def predict(module: torch.nn.Module, signals: typing.Sequence[np.ndarray], device: str = "cpu") -> np.ndarray:
    r"""Student A/D/V for whole signals, each on its own (:func:`forward_each`)."""
    rows = forward_each(module, signals, lambda out: out[0].double().cpu().numpy(), device)
    return np.stack(rows) if rows else np.empty((0, len(DIMENSIONS)), dtype=np.float64)


def evaluate(module: torch.nn.Module, sets: typing.Sequence[ValidationSet], device: str = "cpu") -> dict[str, float]:
    r"""CCC of the student against each validation set, per dimension and mean.

    Keys: ``'<set>_<dimension>'`` and ``'<set>_mean'``.
    """
    metrics = {}
    for vs in sets:
        if not len(vs):
            continue
        pred = predict(module, vs.signals, device)
        values = []
        for dim in vs.reference.columns:
            value = ccc_finite(vs.reference[dim].to_numpy(), pred[:, DIMENSIONS.index(dim)])
            metrics[f"{vs.name}_{dim}"] = value
            values.append(value)
        metrics[f"{vs.name}_mean"] = float(np.mean(values)) if values else float("nan")
    return metrics


def selection_key(validation: typing.Sequence[ValidationSet]) -> str:
    r"""Column of the history that selects the best epoch: the first non-empty set's mean (``'none'``: no set)."""
    names = [v.name for v in validation if len(v)]
    return f"{names[0]}_mean" if names else "none"


def json_number(value) -> float | None:
    r"""A figure for a JSON record: rounded to 6 decimals, ``None`` for NaN; a non-number as it is.

    Examples:
        >>> json_number(0.12345678), json_number(float("nan")), json_number("n/a")
        (0.123457, None, 'n/a')

    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    return None if not np.isfinite(value) else round(value, 6)
