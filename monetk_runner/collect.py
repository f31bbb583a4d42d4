"""``results.csv``: one row per dataset x condition x seed of a spec (contract D).

Columns: the run's names and status, the metrics at the paper's endpoint, steps and the stopping
step, a continued run's metrics after ``train.max_steps`` (``<metric>_full``), wall time, the run
folder (relative to results.csv), then one column per condition parameter (the loss names, beta,
gamma, sigmas as ``"0.11,0.09"``, and any other value a condition sets, named by its last key),
then any further metrics, and :data:`TRAILING`: ``run_id``, ``reason``, ``device``, the monetk
version and numerics version, the machine, thread count and torch's CPU kernel level (``AVX2``,
``AVX512``: a seed's metrics move between them) that trained the run; last :data:`SETTINGS`, the
run's effective scale (``config.image_size``, ``config.num_slots``, ...), from which the report's
header says what ran.

One rule for every spec: the metric columns are the values at the moment the stopping rule ended
the run (the paper's "metrics at the end of training"), or at ``max_steps`` when it never fired. A
continued run (``continue_seeds``, the paper's Table 1) trains on past the rule; its later values
appear only in the ``*_full`` columns, so the same run gives the same numbers in every spec. A run
served by its continued twin (see :mod:`monetk_runner.store`) reports what the stopped run would
have: the twin's metrics at the stop and the stopping step as its steps.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from monetk_runner.expand import Run
from monetk_runner.plan import Planned
from monetk_runner.spec import PER_DATASET, Spec
from monetk_runner.store import atomic_write_text

METRICS = ("fg_ari", "ari", "fg_ari_multi", "fg_ari_trivial", "mse")
STOP_METRICS = ("fg_ari", "ari", "fg_ari_multi", "mse")
LEADING = (
    "dataset",
    "condition",
    "seed",
    "status",
    *METRICS,
    "steps",
    "stop_step",
    "continued",
    *(f"{metric}_full" for metric in STOP_METRICS),
    "wall_time_s",
    "run_dir",
)
STANDARD_PARAMETERS = {
    "reconstruction": ("loss", "reconstruction"),
    "mask": ("loss", "mask"),
    "latent": ("loss", "latent"),
    "beta": ("loss", "beta"),
    "gamma": ("loss", "gamma"),
    "sigmas": ("loss", "sigmas"),
}
TRAILING = ("run_id", "reason", "device", "monetk", "numerics", "machine", "threads",
            "cpu_kernels")
#: Column -> run-config path: the settings the report's header prints per dataset.
SETTINGS = {
    "config.image_size": ("data", "image_size"),
    "config.num_slots": ("model", "num_slots"),
    "config.max_steps": ("train", "max_steps"),
    "config.batch_size": ("train", "batch_size"),
    "config.optimizer": ("train", "optimizer"),
    "config.learning_rate": ("train", "learning_rate"),
    "config.lr_decay": ("train", "lr_decay"),
    "config.lr_final_ratio": ("train", "lr_final_ratio"),
    "config.warmup_steps": ("train", "warmup_steps"),
    "config.check_every": ("train", "check_every"),
    "config.data_source": ("data", "source"),
    "config.data_path": ("data", "path"),
    "config.min_objects": ("data", "min_objects"),
    "config.max_objects": ("data", "max_objects"),
    "config.num_eval": ("data", "num_eval"),
}


def parameter_columns(spec: Spec) -> dict[str, tuple]:
    """Column name -> run-config path: the standard parameters and every value a condition sets.

    A column is named by the last key of its path, or by the dotted path when that name is taken.
    """
    paths = list(STANDARD_PARAMETERS.values())
    for partial in spec.conditions.values():
        for path in _config_leaves(partial):
            if path not in paths:
                paths.append(path)
    last_keys = [path[-1] for path in paths]
    columns: dict[str, tuple] = {}
    for path in paths:
        name = path[-1]
        if last_keys.count(name) > 1 or name in LEADING or name in TRAILING or name in METRICS:
            name = ".".join(path)
        columns[name] = path
    return columns


def _config_leaves(partial: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(partial, Mapping) and list(partial) == [PER_DATASET]:
        return list(
            dict.fromkeys(
                leaf
                for value in partial[PER_DATASET].values()
                for leaf in _config_leaves(value, path)
            )
        )
    if isinstance(partial, Mapping) and partial:
        return [
            leaf for key, value in partial.items() for leaf in _config_leaves(value, (*path, key))
        ]
    return [path]


def effective_result(planned: Planned) -> dict | None:
    """The result record of a run as that run itself would have written it."""
    found, run = planned.found, planned.run
    result = found.result
    if result is None or not found.aliased or run.continued or result.get("stop_step") is None:
        return result
    return {**result, "steps": result["stop_step"], "continued": False, "final": result["at_stop"]}


def tested_metrics(result: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics a run's results.csv row and every test use: for a run trained on past the
    stopping rule (``continued``, Table 1), those when the rule fired; else those at its end."""
    return dict((result.get("at_stop") if result.get("continued") else result.get("final")) or {})


def row(planned: Planned, parameters: Mapping[str, tuple], run_dir: str) -> dict[str, Any]:
    """The results.csv row of one run (``status`` missing when it has no result yet)."""
    run: Run = planned.run
    result = effective_result(planned)
    values: dict[str, Any] = {"dataset": run.dataset, "condition": run.condition, "seed": run.seed}
    if result is None:
        values.update(status="missing", continued=run.continued)
    else:
        values.update(
            status=result.get("status"),
            steps=result.get("steps"),
            stop_step=result.get("stop_step"),
            continued=bool(result.get("continued")),
            wall_time_s=result.get("wall_time_s"),
            reason=result.get("reason"),
            device=result.get("device"),
            monetk=(result.get("versions") or {}).get("monetk"),
            numerics=result.get("numerics", 2),
            machine=result.get("machine"),
            threads=result.get("threads"),
            cpu_kernels=result.get("cpu_kernels"),
        )
        values.update(tested_metrics(result))
        if result.get("continued"):
            values.update({f"{metric}_full": value for metric, value in
                           (result.get("final") or {}).items() if metric in STOP_METRICS})
    values["run_dir"] = run_dir
    values["run_id"] = planned.found.run_id
    for column, path in {**parameters, **SETTINGS}.items():
        value = run.config
        for key in path:
            value = value[key]
        values[column] = ",".join(map(str, value)) if isinstance(value, list) else value
    return values


def results_table(spec: Spec, planned: list[Planned], spec_dir: Path,
                  selected: list[Run] | None = None) -> pd.DataFrame:
    """results.csv as a DataFrame: one row per run of ``planned``, columns as described above.
    With ``selected`` (the runs a command chose with --datasets, --conditions, --seeds), a run
    outside it that has no result is ``not selected`` rather than ``missing``."""
    parameters = parameter_columns(spec)
    chosen = None if selected is None else {(r.dataset, r.condition, r.seed) for r in selected}
    rows = []
    for p in planned:
        view = Path(p.run.dataset) / p.run.condition / f"seed-{p.run.seed}"
        exists = (spec_dir / view).is_symlink() or (spec_dir / view).is_dir()
        values = row(p, parameters, view.as_posix() if exists else "")
        if (chosen is not None and values["status"] == "missing"
                and (p.run.dataset, p.run.condition, p.run.seed) not in chosen):
            values["status"] = "not selected"
        rows.append(values)
    fixed = [*LEADING, *parameters, *TRAILING, *SETTINGS]
    extra = sorted({key for r in rows for key in r} - set(fixed))
    return pd.DataFrame(rows, columns=[*LEADING, *parameters, *extra, *TRAILING, *SETTINGS])


def write_results(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` to ``path`` as CSV, atomically."""
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    atomic_write_text(path, buffer.getvalue())
