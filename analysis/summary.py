"""Per-condition summaries: metric medians and IQRs, and the stopping-rule effect (Table 1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.results import finite

#: Metrics summarised per condition, when results.csv has them.
#: fg_ari_trivial: FG-ARI of putting all foreground in one segment, the baseline to beat.
SUMMARY_METRICS = ("fg_ari", "fg_ari_multi", "ari", "fg_ari_trivial", "mse")
#: Metrics of Table 1: end-of-training value minus the value when the stopping rule fired.
STOP_METRICS = ("fg_ari", "ari")


def ok_values(df: pd.DataFrame, dataset: str, condition: str, metric: str) -> np.ndarray:
    """The finite ``metric`` values of the ok runs of one dataset x condition."""
    rows = df[(df["dataset"] == dataset) & (df["condition"] == condition) & (df["status"] == "ok")]
    return finite(rows[metric]) if metric in df.columns else np.array([])


def summary_table(
    df: pd.DataFrame, datasets: Sequence[str], conditions: Sequence[str]
) -> pd.DataFrame:
    """One row per dataset x condition: ``<metric>_{n,median,q25,q75,mean}`` over the ok runs.

    Quartiles are numpy's default (linear interpolation, R's type 7), as in the box plots.
    """
    metrics = [m for m in SUMMARY_METRICS if m in df.columns]
    rows = []
    for dataset in datasets:
        for condition in conditions:
            row = {"dataset": dataset, "condition": condition}
            for metric in metrics:
                v = ok_values(df, dataset, condition, metric)
                q25, median, q75 = np.percentile(v, [25, 50, 75]) if v.size else [np.nan] * 3
                row.update(
                    {
                        f"{metric}_n": v.size,
                        f"{metric}_median": median,
                        f"{metric}_q25": q25,
                        f"{metric}_q75": q75,
                        f"{metric}_mean": v.mean() if v.size else np.nan,
                    }
                )
            rows.append(row)
    return pd.DataFrame(rows)


def trivial_baseline(df: pd.DataFrame, dataset: str) -> float:
    """Median ``fg_ari_trivial`` over a dataset's ok runs (NaN if the column is absent)."""
    if "fg_ari_trivial" not in df.columns:
        return float("nan")
    v = finite(df.loc[(df["dataset"] == dataset) & (df["status"] == "ok"), "fg_ari_trivial"])
    return float(np.median(v)) if v.size else float("nan")


def stop_effect_table(
    df: pd.DataFrame, datasets: Sequence[str], conditions: Sequence[str]
) -> pd.DataFrame:
    """Table 1: over the ok runs with ``continued`` true, the mean of ``metric_full - metric``
    (after max_steps minus when the rule stopped it) and that mean as a percentage of the
    condition's median metric. Empty when no run continued."""
    columns = ["dataset", "condition", "metric", "n", "difference", "ratio_percent"]
    if "continued" not in df.columns:
        return pd.DataFrame(columns=columns)
    rows = []
    for dataset in datasets:
        for condition in conditions:
            for metric in STOP_METRICS:
                if metric not in df.columns or f"{metric}_full" not in df.columns:
                    continue
                runs = df[
                    (df["dataset"] == dataset)
                    & (df["condition"] == condition)
                    & (df["status"] == "ok")
                    & df["continued"]
                ]
                diff = finite(runs[f"{metric}_full"] - runs[metric])
                if not diff.size:
                    continue
                median = np.median(ok_values(df, dataset, condition, metric))
                rows.append(
                    {
                        "dataset": dataset,
                        "condition": condition,
                        "metric": metric,
                        "n": diff.size,
                        "difference": diff.mean(),
                        "ratio_percent": 100.0 * diff.mean() / median,
                    }
                )
    return pd.DataFrame(rows, columns=columns)
