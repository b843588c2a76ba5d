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

import dataclasses
import math
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from benchmark.distill.candidate import (
    calibrate_batchnorm,
    calibration_batches,
    export_candidate,
    set_batchnorm_training,
    update_ema,
)
from benchmark.distill.checkpoint import (
    CHECKPOINT_FORMAT,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from benchmark.distill.config import Hyper
from benchmark.distill.history import epoch_summary
from benchmark.distill.validation import ValidationSet, evaluate, selection_key


class NoTrainingData(ValueError):
    r"""No batch can be formed (too few usable crops of one length)."""


class Interrupted(RuntimeError):
    r"""Training stopped early on purpose (``stop_after_steps``; used to test resuming)."""


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
    trainer = Trainer(
        student,
        shards,
        validation,
        hyper,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        dims=dims,
        usable=usable,
        device=device,
        rank=rank,
        world_size=world_size,
    )
    trainer.restore(resume)
    return trainer.fit(
        checkpoint_every=checkpoint_every, progress=progress, stop_after_steps=stop_after_steps, on_epoch=on_epoch
    )


class Trainer:
    r"""The training loop of :func:`train` in its parts: :meth:`step`, :meth:`validate`, :meth:`checkpoint`.

    Construction plans every epoch's batches (:func:`epoch_batches`), seeds
    torch and builds the optimiser and schedule; :meth:`restore` continues
    from a checkpoint; :meth:`fit` runs the remaining epochs. Everything
    that a resumed run needs is in :attr:`state` and the checkpoint.

    Args: as :func:`train`.

    Raises:
        NoTrainingData: if an epoch has no batch

    """

    def __init__(
        self,
        student: torch.nn.Module,
        shards,
        validation: typing.Sequence[ValidationSet],
        hyper: Hyper,
        *,
        checkpoint: Path,
        fingerprint: dict,
        dims: typing.Sequence[int] = (0, 1, 2),
        usable: np.ndarray | None = None,
        device: str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ):
        self.student, self.shards, self.validation, self.hyper = student, shards, validation, hyper
        self.path, self.fingerprint, self.dims = Path(checkpoint), fingerprint, list(dims)
        self.device, self.rank, self.world_size = device, rank, world_size
        usable = np.ones(len(shards), dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
        self.plan = [epoch_batches(shards, usable, e, hyper, rank, world_size) for e in range(hyper.epochs)]
        if not all(self.plan):
            raise NoTrainingData(
                "No training batch in at least one epoch: a batch needs at least 2 usable crops of one length. "
                "Use more files, a larger --bucket-seconds or a wider --target-range."
            )
        self.total = sum(len(p) for p in self.plan)
        self.calibration = calibration_batches(shards, usable, hyper)

        torch.manual_seed(hyper.seed)
        layout = getattr(student, "training_memory_format", None)
        student.to(device, memory_format=layout(hyper.precision) if layout else torch.contiguous_format).train()
        self.autocast = {
            "device_type": torch.device(device).type,
            "dtype": torch.bfloat16,
            "enabled": hyper.precision == "bf16",
        }
        self.model = student
        if world_size > 1:
            ids = [torch.device(device).index] if device.startswith("cuda") else None
            self.model = torch.nn.parallel.DistributedDataParallel(student, device_ids=ids)
        self.optimizer = torch.optim.AdamW(student.parameters(), lr=hyper.lr, weight_decay=hyper.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, self.total, hyper))
        self.state = {
            "epoch": 0,
            "step": 0,
            "global_step": 0,
            "loss_sum": 0.0,
            "loss_n": 0,
            "history": [],
            "best": None,
            "done": False,
            "ema": None,
            "bn_frozen": False,
        }
        self.resumed_from: int | None = None

    def restore(self, resume: bool = True) -> None:
        r"""Continue from the checkpoint if there is one of this run (``resume``), else start fresh.

        Raises:
            CheckpointMismatch: if the checkpoint belongs to another, unfinished run

        """
        if self.path.exists() and not resume:
            if self.rank == 0:
                self.path.unlink()
        elif self.path.exists():
            saved = load_checkpoint(self.path, self.fingerprint)
            if saved is None:
                if self.rank == 0:
                    print(
                        f"Checkpoint {self.path} is of a finished run with other settings: starting a new run.",
                        flush=True,
                    )
            else:
                self.student.load_state_dict(saved["model"])
                self.optimizer.load_state_dict(saved["optimizer"])
                self.scheduler.load_state_dict(saved["scheduler"])
                set_rng_state(saved["rng"])
                self.state = {k: saved[k] for k in self.state}
                self.resumed_from = self.state["global_step"]

    def checkpoint(self) -> None:
        r"""Write the whole training state (rank 0 only; atomically)."""
        if self.rank != 0:
            return
        save_checkpoint(
            self.path,
            {
                "format": CHECKPOINT_FORMAT,
                "fingerprint": self.fingerprint,
                "model": self.student.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": get_rng_state(),
                **self.state,
            },
        )

    def step(self, batch: np.ndarray) -> float:
        r"""One optimiser step on the crops ``batch``; returns its loss."""
        hyper, state = self.hyper, self.state
        x = torch.from_numpy(self.shards.batch(batch)).to(self.device)
        y = torch.from_numpy(self.shards.targets[batch]).to(self.device)
        with torch.autocast(**self.autocast):
            prediction = self.model(x)
        loss = ccc_loss(prediction.float(), y, self.dims, hyper.mse_weight, hyper.loss_weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if hyper.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), hyper.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if hyper.ema:
            state["ema"] = update_ema(state["ema"], self.student, hyper.ema, state["global_step"])
        state["step"] += 1
        state["global_step"] += 1
        value = float(loss.detach())
        state["loss_sum"] += value
        state["loss_n"] += 1
        return value

    def validate(self, row: dict) -> None:
        r"""Score the candidate model (:func:`export_candidate`) into ``row``; keep it if it is the best so far."""
        state = self.state
        calibration = self.calibration if self.hyper.bn_calibration else []
        candidate = export_candidate(
            self.student, state["ema"], self.shards, calibration, self.device, frozen_statistics=state["bn_frozen"]
        )
        row.update(evaluate(candidate, self.validation, self.device))
        score = row.get(selection_key(self.validation), float("nan"))
        best = state["best"]
        if best is None or (np.isfinite(score) and not (best["score"] >= score)):
            state["best"] = {
                "epoch": row["epoch"],
                "score": float(score),
                "state": {k: v.detach().cpu().clone() for k, v in candidate.state_dict().items()},
            }

    def fit(
        self,
        *,
        checkpoint_every: int = 50,
        progress: bool = True,
        stop_after_steps: int | None = None,
        on_epoch: typing.Callable[[pd.DataFrame], None] | None = None,
    ) -> TrainResult:
        r"""Train the remaining epochs (arguments as :func:`train`)."""
        state = self.state
        bar = None
        if not state["done"]:
            bar = tqdm(
                total=self.total,
                initial=state["global_step"],
                desc="train",
                unit="step",
                disable=not progress or self.rank != 0,
                dynamic_ncols=True,
            )
        while not state["done"] and state["epoch"] < self.hyper.epochs:
            row = self._epoch(bar, checkpoint_every, stop_after_steps)
            if self.rank == 0:  # only rank 0 validates and keeps the best model
                self.validate(row)
            state["history"].append(row)
            state.update(epoch=row["epoch"], step=0, loss_sum=0.0, loss_n=0, done=row["epoch"] >= self.hyper.epochs)
            self.checkpoint()
            if self.rank == 0:
                self._report(row, bar, on_epoch)
        if bar is not None:
            bar.close()
        best = state["best"] or {"state": {}, "epoch": 0}  # empty on ranks other than 0
        return TrainResult(
            best_state=best["state"],
            best_epoch=best["epoch"],
            history=pd.DataFrame(state["history"]),
            steps=state["global_step"],
            resumed_from=self.resumed_from,
        )

    def _epoch(self, bar, checkpoint_every: int, stop_after_steps: int | None) -> dict:
        r"""The rest of the current epoch's steps; its row of the history (before validation)."""
        hyper, state = self.hyper, self.state
        epoch = state["epoch"]
        batches = self.plan[epoch]
        started = time.perf_counter()
        if epoch >= hyper.epochs - hyper.bn_freeze_epochs:
            if not state["bn_frozen"]:  # statistics for the weights at the start of the frozen phase
                calibrate_batchnorm(self.student, self.shards, self.calibration, self.device)
                state["bn_frozen"] = True
            set_batchnorm_training(self.student, False)
        for step in range(state["step"], len(batches)):
            value = self.step(batches[step])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=f"{epoch + 1}/{hyper.epochs}", loss=f"{value:.3f}")
            if stop_after_steps is not None and state["global_step"] >= stop_after_steps:
                if bar is not None:
                    bar.close()
                raise Interrupted(f"Stopped after {state['global_step']} steps (stop_after_steps).")
            if checkpoint_every and state["global_step"] % checkpoint_every == 0 and state["step"] < len(batches):
                self.checkpoint()
        return {
            "epoch": epoch + 1,
            "step": state["global_step"],
            "lr": self.scheduler.get_last_lr()[0],
            "train_loss": state["loss_sum"] / max(1, state["loss_n"]),
            "train_seconds": time.perf_counter() - started,
        }

    def _report(self, row: dict, bar, on_epoch: typing.Callable[[pd.DataFrame], None] | None) -> None:
        r"""One line on the epoch (also without a progress bar: --no-progress, logs); ``on_epoch``."""
        line = epoch_summary(row, self.hyper.epochs, (self.state["best"] or {}).get("epoch"))
        if bar is not None and not bar.disable:
            bar.write(line)
        else:
            print(line, flush=True)
        if on_epoch is not None:
            on_epoch(pd.DataFrame(self.state["history"]))


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
    rng = np.random.default_rng([hyper.seed, epoch])
    records = shards.records(epoch)
    records = records[usable[records]]
    batches = []
    for length in np.unique(shards.length[records]):
        group = rng.permutation(records[shards.length[records] == length])
        batches += [
            b for b in np.array_split(group, range(hyper.batch_size, len(group), hyper.batch_size)) if len(b) >= 2
        ]
    if not batches:
        return []
    sampler = DistributedSampler(
        range(len(batches)), num_replicas=world_size, rank=rank, shuffle=True, seed=hyper.seed, drop_last=world_size > 1
    )
    sampler.set_epoch(epoch)
    return [batches[i] for i in sampler]
