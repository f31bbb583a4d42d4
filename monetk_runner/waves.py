"""The runs a spec's ``sequential:`` design needs now (:mod:`analysis.sequential_design`).

The design's state is never stored: it is replayed from the finished runs in the store each time
(a killed or repeated command resumes exactly where the design stands). Seeds are taken in
ascending order, up to ``max_seeds``; a (dataset, condition) gets the seeds its comparisons still
need, and a condition in no sequentially tested comparison gets all ``max_seeds``.
"""

from __future__ import annotations

import pandas as pd

from analysis.sequential_design import evaluate, forecast_needs, needed_seeds
from monetk_runner.collect import results_table
from monetk_runner.expand import Run
from monetk_runner.plan import plan
from monetk_runner.spec import Spec
from monetk_runner.store import RunStore


def is_sequential(spec: Spec) -> bool:
    """Whether the spec has a ``sequential:`` block."""
    return spec.content.get("sequential") is not None


def needed_runs(spec: Spec, runs: list[Run], store: RunStore) -> list[Run]:
    """Those of ``runs`` the design needs after the runs finished so far (all without a block)."""
    if not is_sequential(spec):
        return runs
    content, order, results, datasets = _design_inputs(spec, runs, store)
    return _within(runs, needed_seeds(evaluate(content, results, order, datasets)), order)


def forecast_runs(spec: Spec, runs: list[Run], store: RunStore,
                  simulations: int = 200) -> list[list[Run]] | None:
    """Per simulated continuation of a sequential spec's design from its finished runs
    (:func:`analysis.sequential_design.forecast_needs`), those of ``runs`` it trains by its end;
    None before every dataset has a seed whose compared runs all finished ok."""
    content, order, results, datasets = _design_inputs(spec, runs, store)
    forecasts = forecast_needs(content, results, order, datasets, simulations)
    return None if forecasts is None else [_within(runs, needs, order) for needs in forecasts]


def _design_inputs(spec: Spec, runs: list[Run], store: RunStore
                   ) -> tuple[dict, list[int], pd.DataFrame, list[str]]:
    """The resolved spec, the design's seeds in order, the results so far and the datasets."""
    content = spec.as_dict()
    order = sorted(spec.seeds)[: content["sequential"]["max_seeds"]]
    results = results_table(spec, plan(spec.name, runs, store), store.out / spec.name)
    return content, order, results, list(dict.fromkeys(run.dataset for run in runs))


def _within(runs: list[Run], needs: dict[tuple[str, str], int], order: list[int]) -> list[Run]:
    """The runs among the first ``needs[(dataset, condition)]`` seeds of ``order`` (all of
    ``order`` for a condition in no sequentially tested comparison)."""
    rank = {seed: index for index, seed in enumerate(order)}
    return [run for run in runs if run.seed in rank
            and rank[run.seed] < needs.get((run.dataset, run.condition), len(order))]
