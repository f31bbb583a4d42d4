"""Learning curves: each run's check metrics (its ``history.csv``) against training steps, and the
median over seeds with its interquartile range per dataset and condition.

A run's history has one row per epoch; the rows of a check carry ``eval_fg_ari``, ``eval_ari``
(the segmentation metrics on the evaluation images) and ``monitor_mse`` (the MSE of the
integrated reconstruction on the monitoring images, Eq. 7: the quantity the paper's stopping rule
watches). A finished run that stopped before the others keeps its last value in the median after
its stop (its metrics are final there), so the median at the last step is over every finished run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: Curve metric -> its history.csv column.
CURVE_METRICS = {"fg_ari": "eval_fg_ari", "ari": "eval_ari", "mse": "monitor_mse"}
HISTORY = "history.csv"
#: A run's state in the curves: finished ok, failed, or unfinished (no result yet).
STATES = ("ok", "failed", "unfinished")
COLUMNS = ["dataset", "condition", "seed", "state", "claim_step", "step", *CURVE_METRICS,
           "minutes"]


def load_histories(results: pd.DataFrame, results_dir: str | Path | None) -> pd.DataFrame:
    """The check rows of every run of ``results`` whose folder has a history, long format.

    ``claim_step`` is the step whose metrics the results table (and so every claim) uses: where
    the stopping rule fired for a continued run, else the run's last step. A run without a result
    (``missing``) whose history exists is ``unfinished`` (still training, or stopped before its
    end: the history cannot tell).
    """
    frames = []
    for row in results.to_dict("records"):
        run_dir = row.get("run_dir")
        if results_dir is None or not isinstance(run_dir, str) or not run_dir:
            continue
        path = Path(results_dir) / run_dir / HISTORY
        if not path.is_file():
            continue
        history = pd.read_csv(path)
        if "step" not in history.columns:
            continue
        present = {m: c for m, c in CURVE_METRICS.items() if c in history.columns}
        if not present:
            continue
        checks = history.dropna(subset=list(present.values()), how="all")
        if checks.empty:
            continue
        frame = pd.DataFrame({"step": checks["step"].astype(int)})
        # wall minutes of training up to each check (every epoch before it, its checks included)
        if "epoch_time_s" in history.columns:
            elapsed = pd.to_numeric(history["epoch_time_s"], errors="coerce").fillna(0).cumsum()
            frame["minutes"] = elapsed.loc[checks.index] / 60
        else:
            frame["minutes"] = np.nan
        for metric, column in CURVE_METRICS.items():
            frame[metric] = (pd.to_numeric(checks[column], errors="coerce")
                             if column in checks.columns else np.nan)
        state = {"ok": "ok", "failed": "failed"}.get(str(row.get("status")), "unfinished")
        stop = row.get("stop_step")
        continued = bool(row.get("continued")) and stop is not None and np.isfinite(
            pd.to_numeric(stop, errors="coerce"))
        frame.insert(0, "claim_step", int(stop) if continued else int(frame["step"].max()))
        frame.insert(0, "state", state)
        frame.insert(0, "seed", int(row["seed"]))
        frame.insert(0, "condition", str(row["condition"]))
        frame.insert(0, "dataset", str(row["dataset"]))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def median_curves(
    histories: pd.DataFrame,
    datasets: Sequence[str],
    conditions: Sequence[str],
    up_to_claims: bool = False,
) -> pd.DataFrame:
    """Per dataset, condition and check step: the number of finished ok runs with a value, the
    median, first and third quartile of each metric over them, and the median wall minutes of
    training to that step (``minutes``; from the histories' ``epoch_time_s``, so it counts the
    load of the machine: compare it only between runs trained side by side).

    Each run's value at a step is its last check at or before that step (a run that stopped
    earlier keeps its final value). With ``up_to_claims`` each run's curve ends at its
    ``claim_step``, the step its results-table metrics come from.
    """
    rows = []
    finished = histories[histories["state"] == "ok"]
    if up_to_claims:
        finished = finished[finished["step"] <= finished["claim_step"]]
    for dataset in datasets:
        for condition in conditions:
            runs = finished[(finished["dataset"] == dataset)
                            & (finished["condition"] == condition)]
            if runs.empty:
                continue
            grid = np.sort(runs["step"].unique())
            per_metric = {
                metric: runs.pivot_table(index="step", columns="seed", values=metric,
                                         aggfunc="last", dropna=False)
                .reindex(grid).ffill()
                for metric in CURVE_METRICS
            }
            minutes = runs.pivot_table(index="step", columns="seed", values="minutes",
                                       aggfunc="last", dropna=False).reindex(grid)
            for step in grid:
                row = {"dataset": dataset, "condition": condition, "step": int(step),
                       "minutes": float(np.nanmedian(minutes.loc[step]))
                       if np.isfinite(minutes.loc[step].to_numpy(dtype=float)).any() else np.nan}
                for metric, table in per_metric.items():
                    values = table.loc[step].to_numpy(dtype=float)
                    values = values[np.isfinite(values)]
                    row.setdefault("n", int(values.size))
                    q1, median, q3 = (np.quantile(values, [0.25, 0.5, 0.75]) if values.size
                                      else (np.nan,) * 3)
                    row.update({f"{metric}_median": median, f"{metric}_q1": q1,
                                f"{metric}_q3": q3})
                rows.append(row)
    columns = ["dataset", "condition", "step", "n", "minutes",
               *(f"{m}_{s}" for m in CURVE_METRICS for s in ("median", "q1", "q3"))]
    return pd.DataFrame(rows, columns=columns)
