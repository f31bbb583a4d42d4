"""The runs a spec's ``sequential:`` design needs now (:mod:`analysis.sequential_design`).

The design's state is never stored: it is replayed from the finished runs in the store each time
(a killed or repeated command resumes exactly where the design stands). Seeds are taken in
ascending order, up to ``max_seeds``; a (dataset, condition) gets the seeds its comparisons still
need, and a condition in no sequentially tested comparison gets all ``max_seeds``.
"""

from __future__ import annotations

from analysis.sequential_design import evaluate, needed_seeds
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
    content = spec.as_dict()
    max_seeds = content["sequential"]["max_seeds"]
    order = sorted(spec.seeds)[:max_seeds]
    rank = {seed: index for index, seed in enumerate(order)}
    results = results_table(spec, plan(spec.name, runs, store), store.out / spec.name)
    datasets = list(dict.fromkeys(run.dataset for run in runs))
    needs = needed_seeds(evaluate(content, results, order, datasets))
    return [run for run in runs if run.seed in rank
            and rank[run.seed] < needs.get((run.dataset, run.condition), max_seeds)]
