"""The training history: one line per epoch, ``history.csv`` and the training-curve plot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark import DIMENSIONS, atomic_path, atomic_write_text


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


TIMING_COLUMNS = ("train_seconds",)
r"""Columns of the in-memory history that ``history.csv`` leaves out: the provenance record keeps them.

Without them a re-run of the same training rewrites ``history.csv`` and
its plot byte for byte.
"""


def write_history(history: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    r"""Write ``history.csv`` (no wall times) and the training-curve plot ``training_curve.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "history.csv"
    timeless = history.drop(columns=list(TIMING_COLUMNS), errors="ignore")
    atomic_write_text(csv, timeless.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    return csv, plot_history(history, folder / "training_curve.png")


def plot_history(history: pd.DataFrame, path: Path) -> Path:
    r"""Training loss and validation CCC per epoch (matplotlib, Agg backend)."""
    import matplotlib  # only to plot: the backend must be chosen before pyplot is imported

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
    with atomic_path(path, suffix=".png") as tmp:  # the suffix tells matplotlib the format
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
