"""Student training on teacher targets: loss, schedule, validation, checkpoints.

The loop is deterministic on the CPU: the batches of epoch ``e`` (crops
of one length each) and their order are a function of ``(seed, e)``
alone (:func:`epoch_batches`), and every checkpoint carries the model,
optimizer, scheduler, weight average and all random generator states
together with the position inside the epoch. A run killed at any point
and started again therefore ends with the same weights as a run that
was never interrupted.

What is validated and exported is a copy of the student with averaged
weights (:func:`update_ema`) and re-estimated BatchNorm statistics
(:func:`calibrate_batchnorm`): both measured to make the per-epoch
validation, and thus the choice of the best epoch, far less erratic.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import json
import math
import os
import random
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark import DIMENSIONS
from benchmark.results import atomic_write_text

CHECKPOINT_FORMAT = 1
T = typing.TypeVar("T")


class CheckpointMismatch(RuntimeError):
    r"""A checkpoint exists but was written by a different distillation."""


class NoTrainingData(ValueError):
    r"""No batch can be formed (too few usable crops of one length)."""


class Interrupted(RuntimeError):
    r"""Training stopped early on purpose (``stop_after_steps``; used to test resuming)."""


@dataclasses.dataclass(frozen=True)
class Hyper:
    r"""Optimisation hyper-parameters; all of them are part of the checkpoint fingerprint.

    Args:
        epochs: passes over the training files (one augmentation variant of each file per epoch)
        batch_size: crops per step (per process under DDP)
        lr: peak learning rate of AdamW
        weight_decay: AdamW weight decay
        warmup: fraction of all steps with a linear warm-up
        schedule: ``'cosine'`` (warm-up, then cosine decay to ``lr * final_lr``)
            or ``'onecycle'`` (warm-up, then linear decay to ``lr * final_lr``)
        final_lr: learning rate at the end, relative to ``lr``
        mse_weight: weight of an MSE term added to ``1 - mean CCC``
        loss_weights: weights of arousal, dominance and valence in the
            CCC part of the loss (equal weights: the plain mean). They
            trade one dimension against the others, since all share the
            student's trunk (``docs/distillation.md``)
        grad_clip: maximum gradient norm (0: no clipping)
        bn_calibration: clean training crops to re-estimate BatchNorm
            statistics on before every validation (0: keep the running averages)
        bn_freeze_epochs: train the last N epochs with BatchNorm statistics
            frozen: re-estimated on the ``bn_calibration`` clean crops for
            the weights of that moment, then used in inference mode, so
            the network adapts to the statistics it will be run with
            (a MobileNet trained long with per-batch statistics comes to
            depend on the other crops of its batch; ``docs/distillation.md``)
        ema: decay per step of an exponential moving average of the
            weights; validation, model selection and export use the
            averaged weights (0: the raw weights)
        seed: seeds the student's initialisation and the batch order
        precision: ``'fp32'``, or ``'bf16'``: the training step runs under
            bfloat16 autocast (weights, optimiser state, loss, BatchNorm
            calibration, validation and export stay in float32)

    """

    epochs: int = 7
    batch_size: int = 16
    lr: float = 1.5e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    schedule: str = "cosine"
    final_lr: float = 0.02
    mse_weight: float = 0.5
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    grad_clip: float = 1.0
    bn_calibration: int = 192
    bn_freeze_epochs: int = 0
    ema: float = 0.99
    seed: int = 0
    precision: str = "fp32"


@dataclasses.dataclass
class ValidationSet:
    r"""Whole, clean files with reference A/D/V: the student is scored against it.

    Attributes:
        name: ``'teacher'`` (held-out pool files, teacher outputs) or ``'gold'`` (human labels)
        signals: mono 16 kHz float32 signals, in :attr:`reference` order
            (whole files: :class:`~benchmark.distill.annotate.AudioFiles`, read as they are used)
        reference: index: files; columns: the dimensions to score

    """

    name: str
    signals: typing.Sequence[np.ndarray]
    reference: pd.DataFrame

    def __len__(self) -> int:
        return len(self.signals)


@dataclasses.dataclass
class TrainResult:
    r"""Outcome of :func:`train`.

    Attributes:
        best_state: the validated model's ``state_dict`` at the best epoch (empty on DDP ranks other than 0)
        best_epoch: 1-based epoch chosen by mean CCC vs the teacher on held-out files
        history: one row per epoch (loss, learning rate, validation CCCs, time)
        steps: optimiser steps done in total
        resumed_from: global step the run resumed at (``None``: fresh start)

    """

    best_state: dict
    best_epoch: int
    history: pd.DataFrame
    steps: int
    resumed_from: int | None


def ccc(truth: np.ndarray, prediction: np.ndarray) -> float:
    r"""Concordance correlation coefficient (population variance; NaN for < 2 pairs).

    Examples:
        >>> round(ccc(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])), 6)
        1.0

    """
    t, p = np.asarray(truth, np.float64), np.asarray(prediction, np.float64)
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    if len(t) < 2:
        return float("nan")
    denominator = t.var() + p.var() + (t.mean() - p.mean()) ** 2
    if denominator == 0:
        return float("nan")
    return float(2 * np.mean((t - t.mean()) * (p - p.mean())) / denominator)


def ccc_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    dims: typing.Sequence[int],
    mse_weight: float = 0.0,
    weights: typing.Sequence[float] | None = None,
) -> torch.Tensor:
    r"""``1 - mean CCC`` over ``dims`` of a batch (+ ``mse_weight`` × MSE).

    CCC rewards getting the batch's spread and offset right, not only
    its ranking; the MSE term keeps absolute values anchored when a
    batch happens to have little variance.

    Args:
        prediction: batch × dimensions
        target: batch × dimensions
        dims: columns the loss covers
        mse_weight: weight of the MSE term
        weights: one weight per column of ``prediction`` (indexed by ``dims``);
            the CCC part is then their weighted mean. ``None`` or equal
            weights: the plain mean

    Examples:
        >>> t = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.1, 0.9], [0.9, 0.7, 0.2]])
        >>> round(float(ccc_loss(t, t, [0, 1, 2])), 6)
        0.0
        >>> p = torch.tensor([[0.1, 0.2, 0.9], [0.5, 0.1, 0.3], [0.9, 0.7, 0.2]])
        >>> round(float(ccc_loss(p, t, [0, 1, 2])), 4), round(float(ccc_loss(p, t, [0, 1, 2], weights=[1, 1, 2])), 4)
        (0.4186, 0.6279)

    """
    p, t = prediction[:, dims], target[:, dims]
    pm, tm = p.mean(0), t.mean(0)
    cov = ((p - pm) * (t - tm)).mean(0)
    value = 2 * cov / (p.var(0, unbiased=False) + t.var(0, unbiased=False) + (pm - tm) ** 2 + 1e-8)
    chosen = [float(weights[d]) for d in dims] if weights is not None else []
    if len(set(chosen)) > 1:
        w = torch.tensor(chosen, dtype=value.dtype, device=value.device)
        loss = 1 - (value * w).sum() / w.sum()
    else:  # the plain mean, bit for bit as before the weights existed
        loss = 1 - value.mean()
    if mse_weight:
        loss = loss + mse_weight * torch.mean((p - t) ** 2)
    return loss


def lr_factor(step: int, total: int, hyper: Hyper) -> float:
    r"""Learning rate at ``step`` relative to ``hyper.lr``.

    Examples:
        >>> h = Hyper(warmup=0.1, final_lr=0.0)
        >>> [round(lr_factor(s, 100, h), 3) for s in (0, 9, 10, 55, 100)]
        [0.1, 1.0, 1.0, 0.5, 0.0]

    """
    warm = max(1, int(round(hyper.warmup * total)))
    if step < warm:
        return (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    if hyper.schedule == "onecycle":
        shape = 1.0 - progress
    elif hyper.schedule == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        raise ValueError(f"Unknown schedule '{hyper.schedule}': use 'cosine' or 'onecycle'.")
    return hyper.final_lr + (1.0 - hyper.final_lr) * shape


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


def forward_each(module: torch.nn.Module, signals: typing.Sequence[np.ndarray], take: typing.Callable[[torch.Tensor], T],
                 device: str = "cpu") -> list[T]:
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
            value = ccc(vs.reference[dim].to_numpy(), pred[:, DIMENSIONS.index(dim)])
            metrics[f"{vs.name}_{dim}"] = value
            values.append(value)
        metrics[f"{vs.name}_mean"] = float(np.mean(values)) if values else float("nan")
    return metrics


def train(
    student: torch.nn.Module,
    shards,
    validation: typing.Sequence[ValidationSet],
    hyper: Hyper,
    *,
    checkpoint: Path,
    fingerprint: dict,
    dims: typing.Sequence[int] = (0, 1, 2),
    usable: np.ndarray | None = None,
    resume: bool = True,
    device: str = "cpu",
    checkpoint_every: int = 50,
    progress: bool = True,
    stop_after_steps: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    on_epoch: typing.Callable[[pd.DataFrame], None] | None = None,
) -> TrainResult:
    r"""Train ``student`` on the teacher targets in ``shards``.

    Args:
        student: freshly initialised model (its weights are replaced on resume)
        shards: :class:`benchmark.distill.annotate.Shards`
        validation: held-out sets scored after every epoch; the first
            one named ``'teacher'`` selects the best epoch
        hyper: optimisation hyper-parameters
        checkpoint: file of the training state (written atomically)
        fingerprint: what defines this run (student, teacher, data,
            recipe, hyper-parameters); a checkpoint with another
            fingerprint is refused
        dims: indices of the dimensions the loss covers
        usable: per record of ``shards``, whether to train on it (default:
            all); off-scale teacher outputs are left out this way
        resume: continue from ``checkpoint`` if it exists; ``False``
            discards it
        device: torch device
        checkpoint_every: also write the checkpoint every N steps
        progress: show a progress bar with ETA
        stop_after_steps: raise :class:`Interrupted` once this many
            steps are done, without writing a checkpoint first (as a
            kill would); for testing resume
        rank: process rank under DDP (only rank 0 writes)
        world_size: number of processes under DDP
        on_epoch: called on rank 0 with the history after every epoch

    Raises:
        CheckpointMismatch: if ``checkpoint`` belongs to another run

    """
    checkpoint = Path(checkpoint)
    usable = np.ones(len(shards), dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    plan = [epoch_batches(shards, usable, e, hyper, rank, world_size) for e in range(hyper.epochs)]
    if not all(plan):
        raise NoTrainingData(
            "No training batch in at least one epoch: a batch needs at least 2 usable crops of one length. "
            "Use more files, a larger --bucket-seconds or a wider --target-range."
        )
    total = sum(len(p) for p in plan)
    calibration = calibration_batches(shards, usable, hyper)

    torch.manual_seed(hyper.seed)
    layout = getattr(student, "training_memory_format", None)
    student.to(device, memory_format=layout(hyper.precision) if layout else torch.contiguous_format).train()
    autocast = {"device_type": torch.device(device).type, "dtype": torch.bfloat16,
                "enabled": hyper.precision == "bf16"}
    model = student
    if world_size > 1:
        ids = [torch.device(device).index] if device.startswith("cuda") else None
        model = torch.nn.parallel.DistributedDataParallel(student, device_ids=ids)
    optimizer = torch.optim.AdamW(student.parameters(), lr=hyper.lr, weight_decay=hyper.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, hyper))

    state = {"epoch": 0, "step": 0, "global_step": 0, "loss_sum": 0.0, "loss_n": 0, "history": [],
             "best": None, "done": False, "ema": None, "bn_frozen": False}
    resumed_from = None
    if checkpoint.exists() and not resume:
        if rank == 0:
            checkpoint.unlink()
    elif checkpoint.exists():
        saved = load_checkpoint(checkpoint, fingerprint)
        if saved is None:
            if rank == 0:
                print(f"Checkpoint {checkpoint} is of a finished run with other settings: starting a new run.",
                      flush=True)
        else:
            student.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            set_rng_state(saved["rng"])
            state = {k: saved[k] for k in state}
            resumed_from = state["global_step"]

    def save() -> None:
        if rank != 0:
            return
        save_checkpoint(checkpoint, {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": fingerprint,
            "model": student.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": get_rng_state(),
            **state,
        })

    bar = None
    if not state["done"]:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=state["global_step"], desc="train", unit="step",
                   disable=not progress or rank != 0, dynamic_ncols=True)
    dims = list(dims)
    while not state["done"] and state["epoch"] < hyper.epochs:
        epoch = state["epoch"]
        batches = plan[epoch]
        steps_per_epoch = len(batches)
        started = time.perf_counter()
        if epoch >= hyper.epochs - hyper.bn_freeze_epochs:
            if not state["bn_frozen"]:  # statistics for the weights at the start of the frozen phase
                calibrate_batchnorm(student, shards, calibration, device)
                state["bn_frozen"] = True
            set_batchnorm_training(student, False)
        for step in range(state["step"], steps_per_epoch):
            idx = batches[step]
            x = torch.from_numpy(shards.batch(idx)).to(device)
            y = torch.from_numpy(shards.targets[idx]).to(device)
            with torch.autocast(**autocast):
                prediction = model(x)
            loss = ccc_loss(prediction.float(), y, dims, hyper.mse_weight, hyper.loss_weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if hyper.grad_clip:
                torch.nn.utils.clip_grad_norm_(student.parameters(), hyper.grad_clip)
            optimizer.step()
            scheduler.step()
            if hyper.ema:
                state["ema"] = update_ema(state["ema"], student, hyper.ema, state["global_step"])
            state["step"] = step + 1
            state["global_step"] += 1
            value = float(loss.detach())
            state["loss_sum"] += value
            state["loss_n"] += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=f"{epoch + 1}/{hyper.epochs}", loss=f"{value:.3f}")
            if stop_after_steps is not None and state["global_step"] >= stop_after_steps:
                if bar is not None:
                    bar.close()
                raise Interrupted(f"Stopped after {state['global_step']} steps (stop_after_steps).")
            if checkpoint_every and state["global_step"] % checkpoint_every == 0 and state["step"] < steps_per_epoch:
                save()
        row = {
            "epoch": epoch + 1,
            "step": state["global_step"],
            "lr": scheduler.get_last_lr()[0],
            "train_loss": state["loss_sum"] / max(1, state["loss_n"]),
            "train_seconds": time.perf_counter() - started,
        }
        if rank == 0:  # only rank 0 validates and keeps the best model
            candidate = export_candidate(student, state["ema"], shards, calibration if hyper.bn_calibration else [],
                                         device, frozen_statistics=state["bn_frozen"])
            row.update(evaluate(candidate, validation, device))
            score = row.get(selection_key(validation), float("nan"))
            best = state["best"]
            if best is None or (np.isfinite(score) and not (best["score"] >= score)):
                state["best"] = {"epoch": epoch + 1, "score": float(score),
                                 "state": {k: v.detach().cpu().clone() for k, v in candidate.state_dict().items()}}
        state["history"].append(row)
        state.update(epoch=epoch + 1, step=0, loss_sum=0.0, loss_n=0, done=epoch + 1 >= hyper.epochs)
        save()
        if rank == 0:
            # also without a progress bar (--no-progress, logs): one line per epoch
            line = epoch_summary(row, hyper.epochs, (state["best"] or {}).get("epoch"))
            if bar is not None and not bar.disable:
                bar.write(line)
            else:
                print(line, flush=True)
            if on_epoch is not None:
                on_epoch(pd.DataFrame(state["history"]))
    if bar is not None:
        bar.close()
    best = state["best"] or {"state": {}, "epoch": 0}  # empty on ranks other than 0
    return TrainResult(
        best_state=best["state"],
        best_epoch=best["epoch"],
        history=pd.DataFrame(state["history"]),
        steps=state["global_step"],
        resumed_from=resumed_from,
    )


def epoch_batches(
    shards, usable: np.ndarray, epoch: int, hyper: Hyper, rank: int = 0, world_size: int = 1
) -> list[np.ndarray]:
    r"""The batches of one epoch for one process, in training order.

    Records (one variant of every file, :meth:`Shards.records`) are
    grouped by crop length, shuffled within each length and cut into
    batches of ``hyper.batch_size``; a rest of fewer than 2 crops is
    left out (a CCC needs two). The batch order is shuffled and shared
    out among processes by a :class:`DistributedSampler`. Everything
    depends only on ``(seed, epoch)``, so a resumed run replays the
    same batches.
    """
    from torch.utils.data import DistributedSampler

    rng = np.random.default_rng([hyper.seed, epoch])
    records = shards.records(epoch)
    records = records[usable[records]]
    batches = []
    for length in np.unique(shards.length[records]):
        group = rng.permutation(records[shards.length[records] == length])
        batches += [b for b in np.array_split(group, range(hyper.batch_size, len(group), hyper.batch_size)) if len(b) >= 2]
    if not batches:
        return []
    sampler = DistributedSampler(range(len(batches)), num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=hyper.seed, drop_last=world_size > 1)
    sampler.set_epoch(epoch)
    return [batches[i] for i in sampler]


def update_ema(ema: dict | None, module: torch.nn.Module, decay: float, step: int) -> dict:
    r"""One step of the exponential moving average of a module's floating-point state.

    The decay ramps up as ``(1 + step) / (10 + step)``, so early averages
    are not dominated by the random initial weights.

    Examples:
        >>> m = torch.nn.Linear(1, 1, bias=False)
        >>> _ = m.weight.data.fill_(1.0)
        >>> ema = update_ema(None, m, 0.9, 0)
        >>> _ = m.weight.data.fill_(2.0)
        >>> round(float(update_ema(ema, m, 0.9, 1)["weight"]), 4)
        1.8182

    """
    decay = min(decay, (1 + step) / (10 + step))
    current = {k: v.detach() for k, v in module.state_dict().items() if v.is_floating_point()}
    if ema is None:
        return {k: v.clone() for k, v in current.items()}
    for k, v in current.items():
        ema[k].mul_(decay).add_(v, alpha=1 - decay)
    return ema


def export_candidate(
    student: torch.nn.Module, ema: dict | None, shards, calibration: typing.Sequence[np.ndarray], device: str = "cpu",
    frozen_statistics: bool = False,
) -> torch.nn.Module:
    r"""The model that is validated and exported: a copy with averaged weights and fresh BatchNorm statistics.

    With ``frozen_statistics`` (the ``bn_freeze_epochs`` phase) the copy
    keeps the BatchNorm statistics the student trains with instead: the
    network has adapted to exactly those, and re-estimating them for the
    averaged weights undoes that (measured: a MobileNetV4-Conv-Small
    scored CCC 0.05 vs the teacher with recalibrated statistics and 0.67
    with its frozen ones). The model being trained is left exactly as it is.
    """
    candidate = copy.deepcopy(student)
    if ema is not None:
        frozen = batchnorm_statistics(student) if frozen_statistics else {}
        candidate.load_state_dict({**candidate.state_dict(), **ema, **frozen})
    if not frozen_statistics:
        calibrate_batchnorm(candidate, shards, calibration, device)
    return candidate


def batchnorm_layers(module: torch.nn.Module) -> dict[str, torch.nn.modules.batchnorm._BatchNorm]:
    r"""The BatchNorm layers of ``module`` (1d, 2d, 3d), by module name."""
    return {
        name: m for name, m in module.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    }


def batchnorm_statistics(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    r"""The floating-point BatchNorm buffers of ``module`` (running mean and variance), by ``state_dict`` key."""
    return {
        f"{name}.{key}" if name else key: value.detach().clone()
        for name, m in batchnorm_layers(module).items()
        for key, value in m.named_buffers(recurse=False) if value.is_floating_point()
    }


def calibration_batches(shards, usable: np.ndarray, hyper: Hyper) -> list[np.ndarray]:
    r"""Batches of about ``hyper.bn_calibration`` clean crops (variant 0), seeded."""
    rng = np.random.default_rng([hyper.seed, 7])
    records = np.flatnonzero((shards.variant == 0) & usable)
    records = rng.permutation(records)[: hyper.bn_calibration]
    batches = []
    for length in np.unique(shards.length[records]):
        group = records[shards.length[records] == length]
        batches += [b for b in np.array_split(group, range(hyper.batch_size, len(group), hyper.batch_size)) if len(b) >= 2]
    return batches


def calibrate_batchnorm(module: torch.nn.Module, shards, batches: typing.Sequence[np.ndarray], device: str = "cpu") -> None:
    r"""Re-estimate BatchNorm running statistics for the current weights ("precise BN").

    During training, BatchNorm normalises with the statistics of each
    batch and keeps an exponential average for inference. While the
    weights still move fast, that average lags behind them: measured
    here, a Wav2Small after one epoch scored CCC 0.07 vs the teacher
    with its running averages and 0.82 after re-estimating them. So,
    before every validation, the statistics are recomputed as a plain
    average over clean training crops with the weights frozen. Only
    buffers change (no gradients) and the random generators are left as
    they were; :func:`train` calibrates a copy of the model it validates.
    """
    norms = list(batchnorm_layers(module).values())
    if not norms or not batches:
        return
    momenta = [m.momentum for m in norms]
    was_training = module.training
    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        module.train()
        for b in batches:
            module(torch.from_numpy(shards.batch(b)).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    module.train(was_training)


def set_batchnorm_training(module: torch.nn.Module, training: bool) -> None:
    r"""Put only the BatchNorm layers of ``module`` in training (batch statistics) or inference mode."""
    for m in batchnorm_layers(module).values():
        m.train(training)


def epoch_summary(row: dict, epochs: int, best_epoch: int | None = None) -> str:
    r"""One line on an epoch: training loss, validation CCCs, the best epoch so far.

    Examples:
        >>> row = {"epoch": 2, "train_loss": 0.43, "train_seconds": 61.7, "teacher_arousal": 0.864,
        ...        "teacher_dominance": 0.751, "teacher_valence": 0.311, "teacher_mean": 0.642}
        >>> epoch_summary(row, 7, best_epoch=2)
        'epoch 2/7: loss 0.430 (62 s) | teacher A 0.864 D 0.751 V 0.311 mean 0.642 | best epoch 2'

    """
    parts = [f"epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.3f} ({row['train_seconds']:.0f} s)"]
    for name in dict.fromkeys(k.rsplit("_", 1)[0] for k in row if k.endswith("_mean")):
        values = " ".join(
            f"{dim[0].upper()} {row[f'{name}_{dim}']:.3f}" for dim in DIMENSIONS if f"{name}_{dim}" in row
        )
        parts.append(f"{name} {values} mean {row[f'{name}_mean']:.3f}")
    if best_epoch:
        parts.append(f"best epoch {best_epoch}")
    return " | ".join(parts)


def selection_key(validation: typing.Sequence[ValidationSet]) -> str:
    r"""Column of the history that selects the best epoch: the first non-empty set's mean (``'none'``: no set)."""
    names = [v.name for v in validation if len(v)]
    return f"{names[0]}_mean" if names else "none"


def get_rng_state() -> dict:
    r"""All random generator states that training touches."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    r"""Restore what :func:`get_rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict) -> None:
    r"""``torch.save`` to a temporary file, then rename: a kill never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: Path, fingerprint: dict) -> dict | None:
    r"""Load a checkpoint and check that it belongs to this run.

    Returns:
        the checkpoint, or ``None`` if it is of a *finished* run with other
        settings: that run exported its model, so nothing is lost by
        starting a new one

    Raises:
        CheckpointMismatch: if it is unreadable or its fingerprint differs,
            naming the differing settings and how to start fresh (an
            interrupted run with other settings is never discarded silently)

    """
    fresh = "Start fresh with --no-resume (this discards the checkpoint) or choose another --out."
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as ex:  # a truncated or foreign file: never guess
        raise CheckpointMismatch(f"Cannot read checkpoint {path} ({type(ex).__name__}: {ex}). {fresh}") from None
    if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatch(f"Checkpoint {path} has an unknown format. {fresh}")
    old = saved.get("fingerprint", {})
    if old != fingerprint and saved.get("done"):
        return None
    if old != fingerprint:
        flat_old, flat_new = _flatten(old), _flatten(fingerprint)
        diffs = [
            f"{key.split('.', 1)[-1]}: {_short(flat_old.get(key))} -> {_short(flat_new.get(key))}"
            for key in sorted(set(flat_old) | set(flat_new))
            if flat_old.get(key) != flat_new.get(key)
        ]
        raise CheckpointMismatch(
            f"Checkpoint {path} belongs to another distillation; it differs in "
            + "; ".join(diffs)
            + f". Re-run with the original settings to resume it. {fresh}"
        )
    return saved


def _flatten(mapping: dict, prefix: str = "") -> dict:
    r"""Nested settings as ``{'hyper.lr': 0.01, ...}``, so a mismatch names the leaf that differs.

    Examples:
        >>> _flatten({"a": 1, "b": {"c": 2}})
        {'a': 1, 'b.c': 2}

    """
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def write_history(history: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    r"""Write ``history.csv`` and the training-curve plot ``training_curve.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "history.csv"
    atomic_write_text(csv, history.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    return csv, plot_history(history, folder / "training_curve.png")


def plot_history(history: pd.DataFrame, path: Path) -> Path:
    r"""Training loss and validation CCC per epoch (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_ccc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(history["epoch"], history["train_loss"], marker="o", color="black")
    ax_loss.set(xlabel="epoch", ylabel="training loss (1 − CCC + w·MSE)", title="Training")
    for prefix, style in (("teacher", "-"), ("gold", "--")):
        for dim in DIMENSIONS:
            col = f"{prefix}_{dim}"
            if col in history and history[col].notna().any():
                ax_ccc.plot(history["epoch"], history[col], style, marker=".", label=f"{dim} vs {prefix}")
    ax_ccc.set(xlabel="epoch", ylabel="CCC", title="Validation (held-out)")
    if ax_ccc.lines:
        ax_ccc.legend(fontsize=7)
    ax_ccc.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path
