"""Load ``results.csv`` (one row per dataset x condition x seed) and pair its runs by seed."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("dataset", "condition", "seed", "status")
#: ``not selected``: a run the command left out (--datasets, --conditions, --seeds) that has no
#: result yet; like ``missing`` it is no data, but nobody asked for it.
STATUSES = ("ok", "failed", "missing", "not selected")
#: Metric columns the analysis knows: every run's metrics at the paper's endpoint (the moment the
#: stopping rule ended it, or max_steps), and ``*_full``, a continued run's after max_steps.
METRICS = (
    "fg_ari",
    "ari",
    "fg_ari_multi",
    "fg_ari_trivial",
    "mse",
    "fg_ari_full",
    "ari_full",
    "fg_ari_multi_full",
    "mse_full",
)
#: Condition parameter columns every results.csv has (contract D).
PARAMETER_COLUMNS = ("reconstruction", "mask", "latent", "beta", "gamma", "sigmas")
#: A test with fewer complete blocks than this reports "too few blocks" instead of a p-value.
MIN_BLOCKS = 5


class BlockDroppedWarning(UserWarning):
    """A seed was dropped from a paired test because a run is missing or failed."""


def load_results(results: pd.DataFrame | str | Path) -> pd.DataFrame:
    """``results.csv`` (or its DataFrame), checked; ``seed``, ``continued`` and metrics typed.

    ``dataset`` and ``condition`` are read as text, so a condition named ``01`` stays ``01``.
    """
    text_columns = {"dataset": str, "condition": str, "status": str}
    df = (
        results.copy()
        if isinstance(results, pd.DataFrame)
        else pd.read_csv(results, dtype=text_columns)
    )
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"results: missing column(s) {', '.join(missing)}")
    df["dataset"] = df["dataset"].astype(str)
    df["condition"] = df["condition"].astype(str)
    df["status"] = df["status"].astype(str)
    bad = sorted(set(df["status"]) - set(STATUSES))
    if bad:
        raise ValueError(f"results.status: {bad} not allowed (allowed: {', '.join(STATUSES)})")
    df["seed"] = pd.to_numeric(df["seed"], errors="raise").astype(int)
    duplicated = df.duplicated(["dataset", "condition", "seed"])
    if duplicated.any():
        first = df.loc[duplicated, ["dataset", "condition", "seed"]].iloc[0].tolist()
        raise ValueError(f"results: duplicate row for (dataset, condition, seed) = {first}")
    _refuse_mixed_numerics(df)
    for column in METRICS:
        if column in df.columns:
            df[column] = pd.to_numeric(df[column], errors="coerce")
    if "continued" in df.columns:
        df["continued"] = df["continued"].map(_as_bool).astype(bool)
    return df


def _refuse_mixed_numerics(df: pd.DataFrame) -> None:
    """A table whose finished runs come from different monetk numerics versions (column
    ``numerics``, issue 14: 0.2's NLL and Eq. 10 are not 0.3's) is refused, naming the versions."""
    if "numerics" not in df.columns:
        return
    versions = pd.to_numeric(df.loc[df["status"] != "missing", "numerics"], errors="coerce")
    found = sorted({int(v) for v in versions.dropna()})
    if len(found) > 1:
        counts = ", ".join(f"{v}: {int((versions == v).sum())} runs" for v in found)
        raise ValueError(
            f"results.numerics: runs of different monetk numerics versions ({counts}) do not "
            "compute the same losses and cannot be compared; re-run the older runs with this "
            "monetk or analyse each version's rows apart"
        )


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) if not pd.isna(value) else False


def parameter_columns(conditions: Mapping[str, Any] | None) -> list[str]:
    """Contract D's parameter columns plus the last key name of every leaf a condition sets."""
    names = list(PARAMETER_COLUMNS)

    def leaves(node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping) and "per_dataset" not in value:
                leaves(value)
            elif key not in names:
                names.append(str(key))

    for overrides in (conditions or {}).values():
        if isinstance(overrides, Mapping):
            leaves(overrides)
    return names


def missing_data(
    df: pd.DataFrame, dataset: str, conditions: Sequence[str], metric: str
) -> list[str]:
    """What keeps a comparison of ``conditions`` in ``dataset`` from being computed at all: the
    metric is not a results column, or a condition has no ok run with a value (empty if none)."""
    if metric not in df.columns:
        return [f"metric {metric!r} is not a column of the results"]
    problems = []
    for condition in conditions:
        rows = df[(df["dataset"] == dataset) & (df["condition"] == condition)]
        ok = rows[(rows["status"] == "ok") & rows[metric].notna()]
        if rows.empty:
            problems.append(f"condition {condition!r} has no runs for dataset {dataset}")
        elif ok.empty:
            counts = ", ".join(f"{n} {s}" for s, n in rows["status"].value_counts().items())
            problems.append(
                f"condition {condition!r} has no ok run with a {metric} value for dataset "
                f"{dataset} ({counts})"
            )
    return problems


def paired_values(
    df: pd.DataFrame,
    dataset: str,
    conditions: Sequence[str],
    metric: str,
    test: str = "",
    complete: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Seeds x ``conditions`` table of ``metric``, keeping seeds whose runs are all ok.

    Every seed that appears for one of ``conditions`` in ``dataset`` but lacks an ok value in
    another is dropped (kept as NaN with ``complete=False``); each gives a message naming dataset,
    condition and seed (also issued as a :class:`BlockDroppedWarning`).
    """
    if metric not in df.columns:
        raise ValueError(f"metric: results have no column {metric!r}")
    rows = df[(df["dataset"] == dataset) & df["condition"].isin(conditions)]
    if rows.empty:
        return pd.DataFrame(columns=list(conditions), dtype=float), []
    wide = rows[rows["status"] == "ok"].pivot(index="seed", columns="condition", values=metric)
    wide = wide.reindex(index=sorted(set(rows["seed"])), columns=list(conditions))
    status = rows.set_index(["condition", "seed"])["status"]
    messages = []
    for seed in wide.index[wide.isna().any(axis=1)]:
        for condition in wide.columns[wide.loc[seed].isna()]:
            why = status.get((condition, seed), "absent")
            why = f"run {why}" if why != "ok" else f"{metric} is NaN"
            where = f" from test {test}" if test else ""
            messages.append(
                f"{dataset}, condition {condition!r}, seed {seed}: {why}; block dropped{where}"
            )
    for message in messages:
        warnings.warn(message, BlockDroppedWarning, stacklevel=2)
    wide = wide.astype(float)
    return (wide.dropna(axis=0, how="any") if complete else wide), messages


def status_counts(
    df: pd.DataFrame, datasets: Sequence[str], conditions: Sequence[str]
) -> pd.DataFrame:
    """Runs per dataset x condition (in the given order) by status: ok, failed, missing, total;
    ``not selected`` too where a run has it."""
    counts = df.groupby(["dataset", "condition"])["status"].value_counts().unstack(fill_value=0)
    order = pd.MultiIndex.from_product([datasets, conditions], names=["dataset", "condition"])
    shown = [s for s in STATUSES if s != "not selected" or s in counts.columns]
    counts = counts.reindex(index=order, columns=shown, fill_value=0)
    counts["total"] = counts.sum(axis=1)
    return counts.reset_index()


def ordered(preferred: Sequence[str], present: Sequence[str]) -> list[str]:
    """``preferred`` names that are present, then the other present names in sorted order."""
    present_set = set(present)
    first = [name for name in preferred if name in present_set]
    return first + sorted(present_set - set(first))


def finite(values: pd.Series) -> np.ndarray:
    """The finite values of a column as a float array."""
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return array[np.isfinite(array)]
