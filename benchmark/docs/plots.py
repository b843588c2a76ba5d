"""Figures of the generated docs, rendered to PNG bytes.

Only matplotlib's object-oriented API is used (``Figure`` +
the Agg canvas, never :mod:`matplotlib.pyplot`): no global figure
state, no backend switch in the importing process, and nothing to close.

Every figure is rendered under a fixed style (matplotlib defaults,
bundled DejaVu fonts, fixed DPI) and saved without the metadata
matplotlib would stamp into the file, so the same data gives the same
bytes on every run (``nox -s docs`` twice leaves ``git status`` clean).
"""

from __future__ import annotations

import contextlib
import io
import typing

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from benchmark import DIMENSIONS

DPI = 100
STYLE = {
    # Bundled with matplotlib: the same glyphs on every machine.
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    # Fixed salt: SVG ids (if anyone saves SVG) do not change between runs.
    "svg.hashsalt": "ser-benchmark",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
METADATA = {"Software": None}
r"""PNG metadata: drop the matplotlib version stamp (no time is written for PNG)."""

DIMENSION_COLORS = {"arousal": "#d62728", "dominance": "#2ca02c", "valence": "#1f77b4"}

COST_POINT_KINDS = {
    "measured": "CCC measured here",
    "architecture": "CCC measured here; time of its architecture (random weights)",
    "published": "published CCC, not measured here; time of its architecture (random weights)",
    "cost only": "timed as its architecture (random weights); no CCC here or published",
}
r"""What a point of the accuracy-against-cost figure is, by ``kind``; the legend says the same.

:func:`benchmark.docs.summary.cost_points` gives each point its kind.
"""


@contextlib.contextmanager
def style() -> typing.Iterator[None]:
    r"""Matplotlib defaults plus :data:`STYLE`, whatever the user's matplotlibrc says."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)
        yield


def new_figure(width: float, height: float) -> Figure:
    r"""A figure attached to an Agg canvas (no pyplot)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    r"""Encode a figure as PNG without run-dependent metadata.

    The plots are flat colours on white: a 256-colour palette keeps them
    sharp at about a third of the size, which matters for files that
    are committed again whenever results change.
    """
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata=METADATA, facecolor="white")
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="png", optimize=True)  # Pillow writes no time or software chunk
    return out.getvalue()


def model_colors(models: typing.Iterable[str]) -> dict[str, str]:
    r"""Stable colour per model: position in the sorted list of names.

    Examples:
        >>> model_colors(["b", "a"])
        {'a': '#1f77b4', 'b': '#ff7f0e'}

    """
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    return {m: palette[i % len(palette)] for i, m in enumerate(sorted(set(models)))}


def ccc_bars(rows: pd.DataFrame, title: str) -> bytes:
    r"""Grouped bars of CCC with 95% CI: one group per dimension, one bar per model.

    Args:
        rows: columns ``model``, ``dimension``, ``ccc``, ``ccc_ci_low``,
            ``ccc_ci_high``; model order is the order of first appearance
        title: axes title

    """
    models = list(dict.fromkeys(rows["model"]))
    dims = [d for d in DIMENSIONS if d in set(rows["dimension"])]
    colors = model_colors(models)
    width = 0.8 / max(len(models), 1)
    with style():
        fig = new_figure(min(10.0, 3.0 + 0.3 * len(dims) * max(1, len(models))), 3.2)
        ax = fig.add_subplot()
        for i, model in enumerate(models):
            sub = rows[rows["model"] == model].set_index("dimension").reindex(dims)
            x = np.arange(len(dims)) + (i - (len(models) - 1) / 2) * width
            y = sub["ccc"].to_numpy(float)
            err = np.vstack([y - sub["ccc_ci_low"].to_numpy(float), sub["ccc_ci_high"].to_numpy(float) - y])
            ax.bar(x, np.nan_to_num(y), width, color=colors[model], label=model)
            ax.errorbar(x, y, yerr=np.abs(np.nan_to_num(err)), fmt="none", ecolor="black", capsize=2, lw=0.8)
        ax.set_xticks(np.arange(len(dims)), dims)
        ax.set_ylabel("CCC (95% CI)")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.tight_layout()
        return to_png(fig)


def truth_vs_prediction(predictions: pd.DataFrame, dims: typing.Sequence[str], title: str) -> bytes:
    r"""Scatter of gold standard vs prediction, one panel per dimension."""
    with style():
        fig = new_figure(max(4.5, 3.0 * len(dims)), 3.7)
        for i, dim in enumerate(dims):
            ax = fig.add_subplot(1, len(dims), i + 1)
            truth = pd.to_numeric(predictions[f"truth_{dim}"], errors="coerce")
            pred = pd.to_numeric(predictions[f"pred_{dim}"], errors="coerce")
            ax.scatter(truth, pred, s=4, alpha=0.4, color=DIMENSION_COLORS[dim], linewidths=0)
            ax.plot([0, 1], [0, 1], color="black", lw=0.6, ls="--")
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_aspect("equal")
            ax.set_xlabel(f"gold {dim}")
            ax.set_ylabel(f"predicted {dim}")
        fig.suptitle(title)
        fig.tight_layout()
        return to_png(fig)


def robustness_bars(rows: pd.DataFrame, title: str) -> bytes:
    r"""Horizontal bars of ΔCCC (perturbed − clean) per condition and dimension."""
    conditions = sorted(set(rows["condition"]))
    dims = [d for d in DIMENSIONS if d in set(rows["dimension"])]
    height = 0.8 / max(len(dims), 1)
    with style():
        fig = new_figure(6.5, 1.3 + 0.1 * len(conditions) * max(1, len(dims)))
        ax = fig.add_subplot()
        for i, dim in enumerate(dims):
            sub = rows[rows["dimension"] == dim].set_index("condition").reindex(conditions)
            y = np.arange(len(conditions)) + (i - (len(dims) - 1) / 2) * height
            ax.barh(y, np.nan_to_num(sub["delta_ccc"].to_numpy(float)), height, color=DIMENSION_COLORS[dim], label=dim)
        ax.set_yticks(np.arange(len(conditions)), conditions, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel("ΔCCC (perturbed − clean)")
        ax.set_title(title)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
        return to_png(fig)


def snr_curves(rows: pd.DataFrame, title: str) -> bytes:
    r"""CCC over SNR, one panel per dimension and one line per noise type.

    Args:
        rows: columns ``dimension``, ``snr``, ``ccc`` and ``curve``
            (the noise type a point belongs to)
        title: figure title

    """
    dims = [d for d in DIMENSIONS if d in set(rows["dimension"])]
    groups = sorted(set(rows["curve"].fillna("").astype(str)))
    with style():
        fig = new_figure(3.0 * len(dims) + 1.0, 3.0)
        for i, dim in enumerate(dims):
            ax = fig.add_subplot(1, len(dims), i + 1)
            for group in groups:
                sub = rows[(rows["dimension"] == dim) & (rows["curve"].fillna("").astype(str) == group)]
                sub = sub.sort_values("snr")
                ax.plot(
                    sub["snr"].to_numpy(float), sub["ccc"].to_numpy(float), marker="o", ms=3, label=group or "sweep"
                )
            clean = (
                pd.to_numeric(rows.loc[rows["dimension"] == dim, "ccc_clean"], errors="coerce").dropna()
                if "ccc_clean" in rows
                else []
            )
            if len(clean):
                ax.axhline(float(clean.iloc[0]), color="black", ls="--", lw=0.8, label="clean")
            ax.set_xlabel("SNR (dB)")
            ax.set_ylabel("CCC")
            ax.set_title(dim)
        fig.axes[-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.suptitle(title)
        fig.tight_layout()
        return to_png(fig)


def sex_gap_bars(rows: pd.DataFrame, title: str) -> bytes:
    r"""ΔCCC (group − all) per dimension for female and male, with CI and test threshold."""
    dims = [d for d in DIMENSIONS if d in set(rows["dimension"])]
    groups = sorted(set(rows["group"]))
    colors = {"female": "#9467bd", "male": "#17becf"}
    width = 0.8 / max(len(groups), 1)
    with style():
        fig = new_figure(5.5, 3.2)
        ax = fig.add_subplot()
        for i, group in enumerate(groups):
            sub = rows[rows["group"] == group].set_index("dimension").reindex(dims)
            x = np.arange(len(dims)) + (i - (len(groups) - 1) / 2) * width
            y = sub["delta_ccc"].to_numpy(float)
            err = np.vstack([y - sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float) - y])
            ax.bar(x, np.nan_to_num(y), width, color=colors.get(group, "#7f7f7f"), label=group)
            ax.errorbar(x, y, yerr=np.abs(np.nan_to_num(err)), fmt="none", ecolor="black", capsize=2, lw=0.8)
        threshold = pd.to_numeric(rows["threshold"], errors="coerce").dropna()
        if len(threshold):
            t = float(threshold.abs().max())
            ax.axhline(t, color="grey", ls="--", lw=0.8, label=f"±threshold {t:g}")
            ax.axhline(-t, color="grey", ls="--", lw=0.8)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(np.arange(len(dims)), dims)
        ax.set_ylabel("ΔCCC (group − all), 95% CI")
        ax.set_title(title)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
        return to_png(fig)


def speaker_boxplot(rows: pd.DataFrame, title: str) -> bytes:
    r"""Distribution of per-speaker CCC, one box per dimension."""
    dims = [d for d in DIMENSIONS if d in set(rows["dimension"])]
    data = [pd.to_numeric(rows.loc[rows["dimension"] == d, "ccc"], errors="coerce").dropna().to_numpy() for d in dims]
    with style():
        fig = new_figure(4.5, 3.2)
        ax = fig.add_subplot()
        box = ax.boxplot(data, patch_artist=True, widths=0.5)
        for patch, dim in zip(box["boxes"], dims):
            patch.set_facecolor(DIMENSION_COLORS[dim])
            patch.set_alpha(0.5)
        for i, values in enumerate(data):
            # Show the speakers themselves: boxes hide how few there may be.
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(len(values))
            ax.scatter(np.full(len(values), i + 1) + jitter, values, s=6, color="black", alpha=0.5, linewidths=0)
        ax.set_xticks(np.arange(1, len(dims) + 1), dims)
        ax.set_ylabel("CCC per speaker")
        ax.set_title(title)
        fig.tight_layout()
        return to_png(fig)


def distillation_curves(history: pd.DataFrame, title: str) -> bytes:
    r"""Training loss and validation CCC (vs teacher, vs gold) over epochs."""
    epochs = pd.to_numeric(history["epoch"], errors="coerce").to_numpy(float)
    with style():
        fig = new_figure(8.0, 3.0)
        ax = fig.add_subplot(1, 2, 1)
        if "train_loss" in history:
            ax.plot(epochs, pd.to_numeric(history["train_loss"], errors="coerce"), color="black", marker="o", ms=2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax = fig.add_subplot(1, 2, 2)
        for dim in DIMENSIONS:
            for target, ls in (("teacher", "-"), ("gold", "--")):
                col = f"val_ccc_{target}_{dim}"
                if col in history:
                    ax.plot(
                        epochs,
                        pd.to_numeric(history[col], errors="coerce"),
                        color=DIMENSION_COLORS[dim],
                        ls=ls,
                        label=f"{dim} vs {target}",
                    )
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation CCC")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, frameon=False)
        fig.suptitle(title)
        fig.tight_layout()
        return to_png(fig)


def accuracy_vs_cost(points: pd.DataFrame, title: str, metric: str = "CCC") -> bytes:
    r"""Mean CCC against ms per 5 s clip and against parameters (log x), one point per model.

    Args:
        points: columns ``model``, ``kind``, ``ms_per_5s``, ``parameters``
            and ``ccc`` (:func:`benchmark.docs.summary.cost_points`):
            ``measured`` and ``architecture`` points are filled (the
            latter a diamond), ``published`` ones hollow, and a
            ``cost only`` model (no CCC) is a dashed line at its cost
        title: figure title
        metric: what the ``ccc`` column holds (the real-speech figure draws a mean ``AUC``)

    """
    colors = model_colors(points["model"])
    with style():
        fig = new_figure(10.0, 4.6)
        for i, (column, label) in enumerate(
            (("ms_per_5s", "ms per 5 s clip, 1 CPU thread (log)"), ("parameters", "parameters (log)"))
        ):
            ax = fig.add_subplot(1, 2, i + 1)
            _draw_cost_axis(ax, points[pd.to_numeric(points[column], errors="coerce") > 0], column, colors)
            ax.set_xlabel(label)
            ax.set_ylabel(f"mean {metric} over dimensions")
        fig.legend(
            handles=_cost_legend(set(points["kind"]), metric),
            loc="lower center",
            fontsize=7,
            frameon=False,
            ncol=2,
        )
        fig.suptitle(title)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        return to_png(fig)


def _draw_cost_axis(ax, rows: pd.DataFrame, column: str, colors: dict[str, str]) -> None:
    r"""One panel of :func:`accuracy_vs_cost`: the points (or lines) of ``rows`` against ``column``, labelled."""
    marker = {"measured": "o", "architecture": "D", "published": "o"}
    labels = []
    for _, row in rows.iterrows():
        x, color = float(row[column]), colors[row["model"]]
        if row["kind"] == "cost only":
            ax.axvline(x, color=color, ls="--", lw=1.2)
            ax.annotate(
                f"{row['model']} (timed as architecture, no CCC)",
                (x, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                rotation=90,
                xytext=(-2, 0),
                textcoords="offset points",
                ha="left",
                va="bottom",
                rotation_mode="anchor",
                color=color,
            )
            continue
        hollow = row["kind"] == "published"
        ax.scatter(
            x,
            row["ccc"],
            marker=marker[row["kind"]],
            s=36,
            zorder=3,
            linewidths=1.5,
            facecolors="none" if hollow else color,
            edgecolors=color,
        )
        labels.append(
            (x, float(row["ccc"]), f"{row['model']}\npublished,\nnot measured here" if hollow else row["model"])
        )
    ax.set_xscale("log")
    ax.margins(x=0.25, y=0.15)  # room for the labels of the outermost points
    _label_points(ax, labels)


def _cost_legend(present: set[str], metric: str) -> list:
    r"""Legend entries of :func:`accuracy_vs_cost` for the kinds of point it shows, in :data:`COST_POINT_KINDS` order."""
    from matplotlib.lines import Line2D

    styles = {
        "measured": {"marker": "o", "ls": "none"},
        "architecture": {"marker": "D", "ls": "none"},
        "published": {"marker": "o", "ls": "none", "markerfacecolor": "none"},
        "cost only": {"ls": "--"},
    }
    labels = {**COST_POINT_KINDS, "measured": COST_POINT_KINDS["measured"].replace("CCC", metric)}
    return [
        Line2D([], [], color="black", label=labels[kind], **styles[kind])
        for kind in COST_POINT_KINDS
        if kind in present
    ]


def _label_points(ax, labels: list[tuple[float, float, str]], size: float = 7.0) -> None:
    r"""Write each label right of its point, moved up where it would cover a label already placed.

    Greedy, bottom to top, in pixels: labels of nearby points (an fp32
    model and its int8 sibling) would otherwise print over each other.
    A moved label gets a thin line to its point.
    """
    ax.autoscale_view()
    line, char = size * 1.3 * DPI / 72, size * 0.6 * DPI / 72  # label height and mean glyph width in pixels
    _room_on_the_right(ax, [(x, y, char * max(map(len, t.splitlines())) + 6) for x, y, t in labels])
    right = ax.transAxes.transform((1.0, 0.0))[0]
    placed: list[tuple[float, float, float, float]] = []  # x0, x1, y0, y1 of each label placed
    for x, y, text in sorted(labels, key=lambda p: (p[1], p[0], p[2])):
        px, py = ax.transData.transform((x, y))
        width, height = char * max(map(len, text.splitlines())), line * len(text.splitlines())
        left = px + 6 + width > right  # no room on the right: write it left of the point
        x0 = px - 6 - width if left else px + 6
        ty = py
        while any(a < x0 + width and x0 < b and c < ty + height / 2 and ty - height / 2 < d for a, b, c, d in placed):
            ty += line / 2
        placed.append((x0, x0 + width, ty - height / 2, ty + height / 2))
        moved = ty - py > 1
        ax.annotate(
            text,
            (x, y),
            fontsize=size,
            xytext=(-6 if left else 6, (ty - py) * 72 / DPI),
            textcoords="offset points",
            va="center",
            ha="right" if left else "left",
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "grey"} if moved else None,
        )


def _room_on_the_right(ax, extents: list[tuple[float, float, float]], most: float = 0.6) -> None:
    r"""Widen a log x axis to the right until every label (point x, y, width in pixels) fits right of its point.

    A label written left of its point may pass over another point and
    read as its label; the axis grows by at most ``most`` times its
    span (in decades), beyond which a label goes left after all.
    """
    low, high = ax.get_xlim()
    start = np.log10(high) - np.log10(low)
    for _ in range(8):
        right = ax.transAxes.transform((1.0, 0.0))[0]
        over = max((ax.transData.transform((x, y))[0] + w - right for x, y, w in extents), default=0.0)
        low, high = ax.get_xlim()
        span = np.log10(high) - np.log10(low)
        if over <= 1 or span >= start * (1 + most):
            return
        width = right - ax.transAxes.transform((0.0, 0.0))[0]
        ax.set_xlim(low, high * 10 ** min(span * over / width * 1.2, start * (1 + most) - span))
