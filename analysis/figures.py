"""Figures: box plots per condition (the paper's Figures 3-5), per-seed paired plots,
critical-difference diagrams (Demsar 2006) and attention masks (Figure 2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from analysis.posthoc import cliques
from analysis.results import paired_values
from analysis.summary import ok_values

#: PNG resolution of every figure; each is also written as a PDF (vector) beside it.
PNG_DPI = 200
METRIC_LABELS = {"fg_ari": "FG-ARI", "fg_ari_multi": "FG-ARI (>= 2 objects)", "ari": "ARI"}
MASK_ARRAYS = ("image", "reconstruction", "masks", "components", "labels")


def boxplot(
    df: pd.DataFrame,
    metric: str,
    datasets: Sequence[str],
    conditions: Sequence[str],
    path: str | Path,
    baselines: Mapping[str, float] | None = None,
    paper_medians: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Box plots of ``metric`` over the ok runs, one panel per dataset, outliers as open circles.

    ``baselines`` (dataset -> value) are drawn as dashed lines (the trivial FG-ARI), the paper's
    medians (dataset -> condition -> value) as red diamonds.
    """
    fig = Figure(figsize=(1.2 + 1.3 * len(conditions) * len(datasets), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(datasets), sharey=True, squeeze=False)[0])
    label = METRIC_LABELS.get(metric, metric)
    for ax, dataset in zip(axes, datasets, strict=True):
        data = [ok_values(df, dataset, c, metric) for c in conditions]
        positions = np.arange(1, len(conditions) + 1)
        ax.boxplot(
            [d if d.size else [np.nan] for d in data],
            positions=positions,
            widths=0.55,
            flierprops={"marker": "o", "markerfacecolor": "none", "markeredgecolor": "0.2"},
            medianprops={"color": "tab:blue", "linewidth": 2},
        )
        ax.set_xticks(
            positions, [f"{c}\n(n={d.size})" for c, d in zip(conditions, data, strict=True)]
        )
        baseline = (baselines or {}).get(dataset, np.nan)
        if np.isfinite(baseline):
            ax.axhline(baseline, color="0.5", linestyle="--", linewidth=1, label="trivial (median)")
        paper = (paper_medians or {}).get(dataset) or {}
        marked = [(p, paper[c]) for p, c in zip(positions, conditions, strict=True) if c in paper]
        if marked:
            xs, ys = zip(*marked, strict=True)
            ax.scatter(xs, ys, marker="D", color="tab:red", zorder=3, label="paper median")
        ax.set_title(dataset)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(label)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="best", fontsize="small")
    fig.suptitle(f"{label} per condition (ok runs)")
    return save(fig, path)


def paired_plot(
    df: pd.DataFrame,
    metric: str,
    datasets: Sequence[str],
    comparisons: Sequence[Sequence[str]],
    path: str | Path,
    title: str,
) -> Path:
    """One panel per dataset x comparison, one line per seed between its conditions (complete
    seeds only). Two conditions: a line is solid blue where the first is higher, dashed orange where
    it is not."""
    fig = Figure(
        figsize=(0.6 + 2.4 * sum(len(c) for c in comparisons) / 2, 0.6 + 3.2 * len(datasets)),
        layout="constrained",
    )
    axes = fig.subplots(len(datasets), len(comparisons), squeeze=False, sharey=True)
    for row, dataset in zip(axes, datasets, strict=True):
        for ax, conditions in zip(row, comparisons, strict=True):
            ax.set_title(f"{dataset}: {' vs '.join(conditions)}", fontsize="small")
            ax.grid(axis="y", alpha=0.3)
            positions = np.arange(len(conditions))
            ax.set_xticks(positions, list(conditions))
            if metric not in df.columns:
                continue
            wide, _ = paired_values(df, dataset, list(conditions), metric)
            for values in wide.to_numpy():
                colour, style = "0.45", "-"
                if len(conditions) == 2 and values[0] <= values[1]:  # dashed: readable in gray
                    colour, style = "tab:orange", "--"
                elif len(conditions) == 2:
                    colour = "tab:blue"
                ax.plot(positions, values, color=colour, linestyle=style, alpha=0.6,
                        linewidth=0.8, marker=".")
            if len(wide):
                ax.plot(positions, wide.median().to_numpy(), color="k", linewidth=2.5)
            ax.set_xlabel(f"{len(wide)} seeds")
        row[0].set_ylabel(METRIC_LABELS.get(metric, metric))
    fig.suptitle(title, fontsize="medium")
    return save(fig, path)


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (PNG at :data:`PNG_DPI`) and the same figure as a PDF beside it
    (``.pdf``, for a paper); return ``path``."""
    path = Path(path)
    fig.savefig(path, dpi=PNG_DPI)
    fig.savefig(path.with_suffix(".pdf"))
    return path


def cd_diagram(mean_ranks: Mapping[str, float], cd: float, path: str | Path, title: str) -> Path:
    """Demsar's critical-difference diagram: conditions at their mean ranks (rank k = highest
    metric), the CD bar, and thick bars joining conditions whose mean ranks differ by less."""
    names, ranks = list(mean_ranks), np.array(list(mean_ranks.values()), dtype=float)
    k = len(names)
    order = np.argsort(ranks, kind="stable")
    groups = cliques(ranks, cd)
    fig = Figure(figsize=(6.4, 1.6 + 0.32 * (k + len(groups))), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0.6, k + 0.4)
    label_y = [-(1.2 + 0.5 * i) for i in range(k)]
    ax.set_ylim(min(label_y) - 0.6, 1.6)
    ax.hlines(0, 1, k, color="k")
    for tick in range(1, k + 1):
        ax.vlines(tick, 0, 0.12, color="k")
        ax.text(tick, 0.22, str(tick), ha="center", va="bottom", fontsize="small")
    ax.plot([1, 1 + cd], [1.2, 1.2], color="tab:red", linewidth=2)
    ax.text(1 + cd / 2, 1.3, f"CD = {cd:.3g}", ha="center", va="bottom", fontsize="small")
    for y, j in zip(label_y, order, strict=True):
        left = y > label_y[k // 2] if k > 1 else True
        x_text = 0.7 if left else k + 0.3
        ax.plot([ranks[j], ranks[j], x_text], [0, y, y], color="0.3", linewidth=0.8)
        ax.text(
            x_text, y + 0.08, f"{names[j]} ({ranks[j]:.2f})", ha="left" if left else "right",
            va="bottom", fontsize="small",
        )  # fmt: skip
    for level, members in enumerate(groups):
        span = ranks[list(members)]
        y = -0.3 - 0.2 * level
        ax.plot([span.min() - 0.03, span.max() + 0.03], [y, y], color="k", linewidth=4)
    ax.set_axis_off()
    ax.set_title(title, fontsize="small")
    return save(fig, path)


def median_seed(
    df: pd.DataFrame, dataset: str, condition: str, metric: str = "fg_ari"
) -> int | None:
    """The seed of the median ok run by ``metric`` (for an even count the lower of the two middle
    runs; ties in value broken by the lower seed); None if there is no ok run."""
    rows = df[(df["dataset"] == dataset) & (df["condition"] == condition) & (df["status"] == "ok")]
    rows = rows[np.isfinite(pd.to_numeric(rows[metric], errors="coerce"))]
    if rows.empty:
        return None
    ranked = rows.sort_values([metric, "seed"])
    return int(ranked["seed"].iloc[(len(ranked) - 1) // 2])


def load_attention_examples(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ``attention_examples.npz`` (contract D), shapes checked."""
    with np.load(path) as data:
        missing = [k for k in MASK_ARRAYS if k not in data]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)}")
        arrays = {k: np.asarray(data[k]) for k in MASK_ARRAYS}
    n, h, w = arrays["image"].shape[:3]
    k = arrays["masks"].shape[1] if arrays["masks"].ndim == 4 else -1
    expected = {
        "image": (n, h, w, 3),
        "reconstruction": (n, h, w, 3),
        "masks": (n, k, h, w),
        "components": (n, k, h, w, 3),
        "labels": (n, h, w),
    }
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise ValueError(
                f"{path}: array {key!r} has shape {arrays[key].shape}, expected {shape}"
            )
    return arrays


def attention_figure(
    arrays: Mapping[str, np.ndarray], title: str, path: str | Path, max_images: int = 3
) -> Path:
    """Per image two rows: input, reconstruction and the K masks; then the ground truth, the
    argmax segmentation and each mask times its component mean (Figure 2 of the paper)."""
    n = min(max_images, arrays["image"].shape[0])
    k = arrays["masks"].shape[1]
    fig = Figure(figsize=(1.25 * (k + 2), 1.35 * 2 * n + 0.5), layout="constrained")
    axes = fig.subplots(2 * n, k + 2, squeeze=False)
    for i in range(n):
        top, bottom = axes[2 * i], axes[2 * i + 1]
        _show(top[0], arrays["image"][i], "input")
        _show(top[1], arrays["reconstruction"][i], "reconstruction")
        segments = arrays["masks"][i].argmax(0)
        vmax = max(19, int(arrays["labels"][i].max()), k - 1)  # one colour per id (ids arbitrary)
        _show(bottom[0], arrays["labels"][i], "ground truth", cmap="tab20", vmax=vmax)
        _show(bottom[1], segments, "argmax mask", cmap="tab20", vmax=vmax)
        for j in range(k):
            mask = arrays["masks"][i, j]
            _show(top[j + 2], mask, f"mask {j + 1}", cmap="gray", vmax=1.0)
            _show(
                bottom[j + 2], mask[..., None] * arrays["components"][i, j], f"m{j + 1} * x{j + 1}"
            )
    fig.suptitle(title, fontsize="medium")
    return save(fig, path)


def _show(ax, image: np.ndarray, title: str, cmap: str | None = None, vmax: float = 1.0) -> None:
    if image.ndim == 3:
        image = np.clip(image, 0.0, 1.0)
    ax.imshow(image, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize="x-small")
    ax.set_axis_off()


def learning_curves(
    histories: pd.DataFrame,
    curves: pd.DataFrame,
    datasets: Sequence[str],
    conditions: Sequence[str],
    path: str | Path,
    baselines: Mapping[str, float] | None = None,
) -> Path:
    """FG-ARI, ARI and the monitored MSE (log scale) against steps: one row per dataset, one
    colour per condition; the median over the finished ok runs as a line with the IQR as a band,
    each finished run's last check as a dot (a failed run's as a cross) and each unfinished
    run (still training, or stopped before its end) as a thin dashed line. ``baselines``: the
    trivial FG-ARI per dataset (dashed grey)."""
    metrics = [("fg_ari", "FG-ARI"), ("ari", "ARI"), ("mse", "monitored MSE")]
    fig = Figure(figsize=(13, 3.4 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), len(metrics), squeeze=False)
    colours = {c: f"C{i % 10}" for i, c in enumerate(conditions)}
    for row, dataset in zip(axes, datasets, strict=True):
        for ax, (metric, label) in zip(row, metrics, strict=True):
            for condition in conditions:
                colour = colours[condition]
                curve = curves[(curves["dataset"] == dataset)
                               & (curves["condition"] == condition)]
                if not curve.empty:
                    ax.plot(curve["step"], curve[f"{metric}_median"], color=colour,
                            label=f"{condition} (median, n={int(curve['n'].iloc[-1])})")
                    ax.fill_between(curve["step"], curve[f"{metric}_q1"],
                                    curve[f"{metric}_q3"], color=colour, alpha=0.2)
                runs = histories[(histories["dataset"] == dataset)
                                 & (histories["condition"] == condition)]
                for (_, state), run in runs.groupby(["seed", "state"], sort=True):
                    run = run.sort_values("step")
                    if state == "unfinished":
                        ax.plot(run["step"], run[metric], color=colour, linestyle="--",
                                linewidth=0.8, alpha=0.8)
                        continue
                    end = run.iloc[-1]
                    ax.plot([end["step"]], [end[metric]], color=colour, alpha=0.7,
                            marker="x" if state == "failed" else "o", markersize=4,
                            linestyle="none")
            baseline = (baselines or {}).get(dataset, np.nan)
            if metric == "fg_ari" and np.isfinite(baseline):
                ax.axhline(baseline, color="0.5", linestyle="--", linewidth=1,
                           label="trivial (median)")
            if metric == "mse":
                ax.set_yscale("log")
            ax.set_title(f"{dataset}: {label}")
            ax.set_xlabel("step")
            ax.xaxis.set_major_locator(MaxNLocator(6))
            ax.xaxis.set_major_formatter(FuncFormatter(_steps))
            ax.grid(alpha=0.3)
        if row[0].get_legend_handles_labels()[0]:
            row[0].legend(loc="best", fontsize="small")
    fig.suptitle("Learning curves: median over finished runs (band: IQR); dots: each run's last "
                 "check; x: failed; dashed: unfinished")
    return save(fig, path)


def _steps(value: float, _position: int) -> str:
    """A step count on an axis: ``40k`` for 40,000, ``1.5k`` for 1,500, ``20`` for 20."""
    return f"{value / 1000:g}k" if abs(value) >= 1000 else f"{value:g}"
