"""The report's section on a ``sequential:`` design: the decisions, when they were made, the
e-values and confidence sequences against seeds, and what stopping early saved."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.figures import save
from analysis.formatting import format_number
from analysis.sequential import confidence_sequence
from analysis.sequential_design import Outcome, evaluate, outcome_table, pairs_by
from analysis.tables import markdown_table

TRAINED = ("ok", "failed")


def savings(df: pd.DataFrame, datasets: list[str], conditions: list[str],
            max_seeds: int) -> dict[str, float]:
    """Runs (rows of results.csv) of the fixed design (every condition and dataset at
    ``max_seeds``) against those the design trained, and the device-hours of the difference at
    the trained runs' mean wall time."""
    trained = df[df["status"].isin(TRAINED)]
    fixed = len(datasets) * len(conditions) * max_seeds
    hours = pd.to_numeric(trained.get("wall_time_s"), errors="coerce").dropna() / 3600
    per_run = float(hours.mean()) if len(hours) else float("nan")
    saved = fixed - len(trained)
    return {"fixed_runs": fixed, "trained_runs": len(trained), "saved_runs": saved,
            "hours_per_run": per_run, "trained_hours": float(hours.sum()),
            "saved_hours": saved * per_run}


@dataclass(frozen=True)
class SequentialSummary:
    """The spec's sequential design replayed over the results: each comparison's outcome, their
    table (:func:`analysis.sequential_design.outcome_table`) and the savings (:func:`savings`)."""

    outcomes: list[Outcome]
    table: pd.DataFrame
    saved: dict[str, float]


def summarise_sequential(spec: Mapping[str, Any], df: pd.DataFrame, datasets: list[str],
                         conditions: list[str]) -> SequentialSummary:
    """Replay the spec's sequential design over the results ``df`` (raises on a bad design)."""
    max_seeds = int(spec["sequential"]["max_seeds"])
    seeds = sorted(int(s) for s in df["seed"].unique())
    outcomes = evaluate(spec, df, seeds, datasets)
    return SequentialSummary(outcomes, outcome_table(outcomes, max_seeds),
                             savings(df, datasets, conditions, max_seeds))


def sequential_section(block: Mapping[str, Any], summary: SequentialSummary, datasets: list[str],
                       out: Path) -> tuple[str, dict[str, Path]]:
    """The report's markdown on the design (``block``: the spec's ``sequential:``) and its
    figures, one per dataset, written to ``out``."""
    max_seeds = int(block["max_seeds"])
    table, saved = summary.table, summary.saved
    written: dict[str, Path] = {}
    for dataset in datasets:
        mine = [o for o in summary.outcomes if o.comparison.dataset == dataset]
        if mine:
            written[f"sequential_{dataset}"] = _figure(mine, out / f"sequential_{dataset}.png",
                                                       block)
    shown = table.assign(
        e_difference=table["e_difference"].map(format_number),
        e_equivalence=table["e_equivalence"].map(format_number),
        mean_difference=table["mean_difference"].map(format_number),
        cs=[f"[{format_number(lo)}, {format_number(hi)}]"
            for lo, hi in zip(table["cs_lower"], table["cs_upper"], strict=True)],
    )[["dataset", "test", "comparison", "decide", "decision", "direction", "seeds_at_decision",
       "pairs", "e_difference", "e_equivalence", "mean_difference", "cs"]]
    lines = [
        "## Sequential design (seeds in waves)",
        "",
        f"Looks after {block['min_seeds']} seeds, then every {block['wave']}, up to "
        f"{max_seeds} (the fixed design). At each look the listed tests' comparisons get "
        "anytime-valid e-processes by betting (Waudby-Smith & Ramdas 2024) on the per-seed "
        "differences (first minus second; for a factor, the mean over its high level minus the "
        "low level); a comparison stops once its e-value, adjusted over its test's family "
        "(e-Holm), reaches 1/alpha (difference) or both one-sided e-values against the margin do "
        "(equivalence). `cs`: the confidence sequence for the mean difference at the last look "
        "(valid at every look). Source: `analysis/sequential.py`.",
        "",
        markdown_table(shown),
        f"**Saved against the fixed design:** {saved['saved_runs']} of {saved['fixed_runs']} runs "
        f"({saved['trained_runs']} trained), about {format_number(saved['saved_hours'])} "
        f"device-hours at the trained runs' mean of {format_number(saved['hours_per_run'])} h "
        f"({format_number(saved['trained_hours'])} h trained), on the machines these runs ran on.",
        "",
        *[f"![{key}]({path.name})" for key, path in written.items()],
        "",
        "The fixed-design tests below ran on whatever seeds the sequential design trained: they "
        "are **post hoc to a sequential design**, and their p-values do not have their nominal "
        "meaning (the seed count depended on the data).",
        "",
    ]
    return "\n".join(lines), written


def _figure(outcomes: list[Outcome], path: Path, block: Mapping[str, Any]) -> Path:
    """Per comparison: its e-value(s) against seeds (log scale, the 1/alpha line) and its
    confidence sequence for the mean difference."""
    fig = Figure(figsize=(0.8 + 3.2 * len(outcomes), 6.0), layout="constrained")
    axes = fig.subplots(2, len(outcomes), squeeze=False)
    for column, outcome in enumerate(outcomes):
        c = outcome.comparison
        count = pairs_by(outcome, outcome.stopped_at or outcome.scheduled)
        top, bottom = axes[0][column], axes[1][column]
        top.set_title(f"{c.dataset}: {c.test}\n{c.label}", fontsize="small")
        top.set_yscale("log")
        top.axhline(1 / c.alpha, color="k", linestyle=":", label=f"1/alpha = {1 / c.alpha:g}")
        x = np.arange(1, count + 1)
        styles = {"difference": ("tab:blue", "-"), "above": ("tab:orange", "--"),
                  "below": ("tab:green", "-.")}
        for key, values in outcome.e_values.items():
            colour, style = styles[key]
            top.plot(x, values[:count], color=colour, linestyle=style, marker=".",
                     label={"difference": "e: difference", "above": "e: mean < +margin",
                            "below": "e: mean > -margin"}[key])
        if outcome.stopped_at is not None:
            top.axvline(pairs_by(outcome, outcome.stopped_at), color="0.4", linewidth=0.8)
        top.set_xlabel("seeds (pairs)")
        top.legend(fontsize="x-small", loc="best")
        if count:
            lower, upper = confidence_sequence(outcome.differences[:count], c.alpha)
            bottom.fill_between(x, lower, upper, color="0.8", label="confidence sequence")
            bottom.plot(x, np.cumsum(outcome.differences[:count]) / x, color="k",
                        label="running mean")
        bottom.axhline(0, color="k", linestyle=":")
        if c.margin:
            for sign in (1, -1):
                bottom.axhline(sign * c.margin, color="tab:green", linestyle="-.", linewidth=0.8)
        bottom.set_xlabel("seeds (pairs)")
        bottom.set_ylabel(f"mean {c.metric} difference")
        bottom.legend(fontsize="x-small", loc="best")
    fig.suptitle(f"Sequential tests (looks: {block['min_seeds']}, then every {block['wave']}, up "
                 f"to {block['max_seeds']} seeds)", fontsize="medium")
    return save(fig, path)
