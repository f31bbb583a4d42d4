"""A spec's ``sequential:`` block: train seeds in waves and stop each test once it has decided.

The block (all keys optional but ``tests``)::

    sequential:
      min_seeds: 5      # seeds before the first look
      wave: 5           # seeds added per look
      max_seeds: 100    # the fixed design's seeds (default: every seed of the spec's list)
      tests:            # the spec's tests to decide sequentially, by name
        pairs: {decide: difference}
        beta: {decide: both, margin: 0.05}

Seeds are taken in ascending order. At each look (``min_seeds``, then every ``wave``, and
``max_seeds``: :func:`analysis.sequential.study_looks`) every comparison of a listed test that is
not decided yet gets its anytime-valid tests (:mod:`analysis.sequential`) on the paired
differences of the seeds so far, with the test's metric and alpha; the comparisons of one test are
one family (e-Holm by default: the test's ``correction``, ``holm``, ``bonferroni`` or ``none``).
A comparison stops at the look where it decides; a condition needs the seeds of the latest-
stopping comparison it is in. The comparisons are:

- ``wilcoxon``: each pair, ``first - second`` per seed;
- ``friedman_factor``: the factor's contrast per seed (:func:`analysis.sequential.factor_contrast`,
  the mean over the high level's conditions minus the low level's; two levels);
- ``friedman``: every pair of its conditions.

Nothing of the design is stored: :func:`evaluate` recomputes it from the finished runs in
``results`` each time, so a resumed or repeated command reaches the same decisions. A run that
failed leaves its seed out of the comparisons it is in (its seed still counts as scheduled).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.sequential import (
    BOUNDS,
    E_CORRECTIONS,
    SequentialResult,
    adjust_e_values,
    confidence_sequence,
    factor_contrast,
    sequential_decision,
    study_looks,
)

DECISIONS = ("difference", "equivalence", "both")
KEYS = ("min_seeds", "wave", "max_seeds", "tests")
TEST_KEYS = ("decide", "margin", "correction")
DEFAULTS: dict[str, Any] = {"min_seeds": 5, "wave": 5, "max_seeds": None}
#: Finished run states: a seed whose run is in one of them is scheduled and will not change.
FINISHED = ("ok", "failed")


@dataclass(frozen=True)
class Comparison:
    """One sequentially tested comparison of one test on one dataset: ``high`` minus ``low``
    (the mean over each side's conditions, per seed)."""

    dataset: str
    test: str
    label: str
    high: tuple[str, ...]
    low: tuple[str, ...]
    metric: str
    alpha: float
    decide: str
    margin: float | None
    correction: str

    @property
    def conditions(self) -> tuple[str, ...]:
        return self.high + self.low


@dataclass
class Outcome:
    """Where one comparison stands: ``scheduled`` seeds finished for all its conditions,
    ``differences`` over those where every run is ok, the seed count it ``needs``, and, once
    decided, the look (``stopped_at``) and what was declared."""

    comparison: Comparison
    scheduled: int
    seeds: list[int]
    positions: np.ndarray  # of ``seeds`` in the design's seed order
    differences: np.ndarray
    needs: int
    stopped_at: int | None = None
    difference: bool = False
    direction: str = ""
    equivalence: bool = False
    e_values: dict[str, np.ndarray] = field(default_factory=dict)


def validate_sequential(block: Any, tests: Any, seed_count: int) -> list[str]:
    """One message per problem of the ``sequential:`` block, with the key and allowed values."""
    if block is None:
        return []
    if not isinstance(block, Mapping):
        return [f"sequential: expected a mapping with keys {', '.join(KEYS)}"]
    problems = [f"sequential.{key}: unknown key (allowed: {', '.join(KEYS)})"
                for key in block if key not in KEYS]
    full = {**DEFAULTS, **block}
    for key in ("min_seeds", "wave", "max_seeds"):
        value = full[key]
        if value is None and key == "max_seeds":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"sequential.{key}: {value!r} must be an integer >= 1")
    max_seeds = full["max_seeds"] if isinstance(full["max_seeds"], int) else seed_count
    if isinstance(full["max_seeds"], int) and full["max_seeds"] > seed_count:
        problems.append(f"sequential.max_seeds: {full['max_seeds']} is more than the spec's "
                        f"{seed_count} seeds")
    if isinstance(full["min_seeds"], int) and full["min_seeds"] > max_seeds:
        problems.append(f"sequential.min_seeds: {full['min_seeds']} is more than max_seeds "
                        f"({max_seeds})")
    by_name = {t.get("name"): t for t in tests or [] if isinstance(t, Mapping)}
    chosen = full.get("tests")
    if not isinstance(chosen, Mapping) or not chosen:
        problems.append("sequential.tests: required, a mapping of test name -> {decide, margin}"
                        f" (tests: {', '.join(map(str, by_name)) or 'none declared'})")
        return problems
    for name, settings in chosen.items():
        where = f"sequential.tests.{name}"
        if name not in by_name:
            problems.append(
                f"{where}: not a declared test (allowed: {', '.join(map(str, by_name))})")
            continue
        problems += _validate_test_settings(where, settings)
    return problems


def _validate_test_settings(where: str, settings: Any) -> list[str]:
    if not isinstance(settings, Mapping):
        return [f"{where}: expected a mapping with keys {', '.join(TEST_KEYS)}"]
    problems = [f"{where}.{key}: unknown key (allowed: {', '.join(TEST_KEYS)})"
                for key in settings if key not in TEST_KEYS]
    decide = settings.get("decide", "difference")
    if decide not in DECISIONS:
        problems.append(f"{where}.decide: {decide!r} is not one of {', '.join(DECISIONS)}")
    margin = settings.get("margin")
    if decide in ("equivalence", "both"):
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 1:
            problems.append(f"{where}.margin: {margin!r}: decide {decide} needs a margin in (0, 1)")
    elif margin is not None:
        problems.append(f"{where}.margin: only used with decide equivalence or both")
    correction = settings.get("correction", "holm")
    if correction not in E_CORRECTIONS:
        problems.append(f"{where}.correction: {correction!r} is not one of "
                        f"{', '.join(E_CORRECTIONS)}")
    return problems


def design(spec: Mapping[str, Any], seed_count: int) -> dict[str, int]:
    """``min_seeds``, ``wave`` and ``max_seeds`` of a spec's (validated) ``sequential:`` block."""
    full = {**DEFAULTS, **spec["sequential"]}
    return {"min_seeds": full["min_seeds"], "wave": full["wave"],
            "max_seeds": full["max_seeds"] or seed_count}


def comparisons(spec: Mapping[str, Any], results: pd.DataFrame,
                datasets: Sequence[str]) -> list[Comparison]:
    """Every sequentially tested comparison of the spec on ``datasets``; a ``friedman_factor``
    test's levels are its factor's parameter column in ``results`` (filled for every planned run,
    finished or not)."""
    chosen = spec["sequential"]["tests"]
    out = []
    for test in spec.get("tests") or []:
        if test.get("name") not in chosen:
            continue
        settings = chosen[test["name"]]
        common = {"test": test["name"], "metric": test.get("metric", "fg_ari"),
                  "alpha": float(test.get("alpha", 0.05)),
                  "decide": settings.get("decide", "difference"), "margin": settings.get("margin"),
                  "correction": settings.get("correction", "holm")}
        for dataset in datasets:
            for label, high, low in _sides(test, results[results["dataset"] == dataset]):
                out.append(Comparison(dataset=dataset, label=label, high=high, low=low, **common))
    return out


def _sides(test: Mapping[str, Any], rows: pd.DataFrame) -> list[tuple[str, tuple, tuple]]:
    if test["kind"] == "wilcoxon":
        return [(f"{a} vs {b}", (a,), (b,)) for a, b in test["pairs"]]
    if test["kind"] == "friedman":
        pairs = itertools.combinations(test["conditions"], 2)
        return [(f"{a} vs {b}", (a,), (b,)) for a, b in pairs]
    factor = test["factor"]
    values = {}
    for condition in test["conditions"]:
        found = rows.loc[rows["condition"] == condition, factor] if factor in rows else []
        values[condition] = found.iloc[0] if len(found) else None
    distinct = sorted({v for v in values.values() if v is not None})
    if len(distinct) != 2 or None in values.values():
        raise ValueError(f"sequential: test {test['name']!r} needs factor {factor!r} at exactly "
                         f"two levels over its conditions, got {values}")
    high = tuple(c for c, v in values.items() if v == distinct[1])
    low = tuple(c for c, v in values.items() if v == distinct[0])
    return [(f"{factor}: {factor}={distinct[1]} - {factor}={distinct[0]}", high, low)]


def evaluate(spec: Mapping[str, Any], results: pd.DataFrame, seeds: Sequence[int],
             datasets: Sequence[str]) -> list[Outcome]:
    """Replay the wave design over the finished runs in ``results`` (the spec's seeds: ``seeds``):
    per comparison, what it has decided and how many seeds it needs."""
    plan = design(spec, len(seeds))
    looks = study_looks(plan["min_seeds"], plan["wave"], plan["max_seeds"])
    ordered_seeds = sorted(seeds)[: plan["max_seeds"]]
    outcomes = [_observe(c, results, ordered_seeds)
                for c in comparisons(spec, results, datasets)]
    families: dict[tuple[str, str], list[Outcome]] = {}
    for outcome in outcomes:
        key = (outcome.comparison.dataset, outcome.comparison.test)
        families.setdefault(key, []).append(outcome)
    for family in families.values():
        _replay(family, looks)
    return outcomes


def needed_seeds(outcomes: list[Outcome]) -> dict[tuple[str, str], int]:
    """Per (dataset, condition): the seeds its comparisons need (the largest)."""
    needs: dict[tuple[str, str], int] = {}
    for outcome in outcomes:
        for condition in outcome.comparison.conditions:
            key = (outcome.comparison.dataset, condition)
            needs[key] = max(needs.get(key, 0), outcome.needs)
    return needs


def forecast_needs(spec: Mapping[str, Any], results: pd.DataFrame, seeds: Sequence[int],
                   datasets: Sequence[str], simulations: int = 200,
                   seed: int = 0) -> list[dict[tuple[str, str], int]] | None:
    """Per simulated continuation of the design, the seeds each (dataset, condition) needs in
    the end (:func:`needed_seeds`); None where a dataset has no donor seed yet.

    A continuation keeps every finished run of ``results`` and gives each unfinished run among
    the design's seeds the row of the same condition at a donor seed drawn at random (with
    replacement, per seed): a finished seed of that dataset whose runs of every compared condition
    are ok. Seeds are exchangeable, so this resamples the paired structure observed so far (the
    bootstrap); failures are not forecast. One replay over the completed table is where the
    runner's waves end: a look uses only the seeds before it, so revealing seeds in waves reaches
    the same stops."""
    order = sorted(seeds)[: design(spec, len(seeds))["max_seeds"]]
    rng = np.random.default_rng(seed)
    pools = []
    for dataset in datasets:
        conditions = {c for comparison in comparisons(spec, results, [dataset])
                      for c in comparison.conditions}
        rows = results[(results["dataset"] == dataset) & results["condition"].isin(conditions)
                       & results["seed"].isin(order)]
        ok = rows.pivot(index="seed", columns="condition", values="status").eq("ok")
        donors = [int(s) for s in ok.index[ok.all(axis=1)]] if len(ok.columns) == len(
            conditions) else []
        if not donors:
            return None
        finished = rows["status"].isin(FINISHED)
        pools.append((rows[finished], rows[~finished], rows.set_index(["condition", "seed"]),
                      donors))
    forecasts = []
    for _ in range(simulations):
        parts = []
        for finished, missing, by_key, donors in pools:
            draw = dict(zip(order, rng.choice(donors, size=len(order)).tolist(), strict=True))
            keys = list(zip(missing["condition"], [draw[int(s)] for s in missing["seed"]],
                            strict=True))
            filled = by_key.loc[keys].reset_index()
            filled["seed"] = missing["seed"].to_numpy()
            parts += [finished, filled]
        table = pd.concat(parts, ignore_index=True)
        forecasts.append(needed_seeds(evaluate(spec, table, seeds, datasets)))
    return forecasts


def _observe(comparison: Comparison, results: pd.DataFrame, seeds: list[int]) -> Outcome:
    rows = results[(results["dataset"] == comparison.dataset)
                   & results["condition"].isin(comparison.conditions)]
    status = {(r.condition, int(r.seed)): r.status for r in rows.itertuples()}
    values = {(r.condition, int(r.seed)): getattr(r, comparison.metric) for r in rows.itertuples()}
    scheduled = 0
    for seed in seeds:
        if not all(status.get((c, seed)) in FINISHED for c in comparison.conditions):
            break
        scheduled += 1
    used = [s for s in seeds[:scheduled]
            if all(status[(c, s)] == "ok" and np.isfinite(float(values[(c, s)]))
                   for c in comparison.conditions)]
    high = [[float(values[(c, s)]) for s in used] for c in comparison.high]
    low = [[float(values[(c, s)]) for s in used] for c in comparison.low]
    differences = factor_contrast(high, low) if used else np.empty(0)
    positions = np.array([seeds.index(s) for s in used], dtype=int)
    return Outcome(comparison, scheduled, used, positions, np.clip(differences, *BOUNDS), needs=0)


def pairs_by(outcome: Outcome, look: int) -> int:
    """How many of the outcome's usable pairs lie among the first ``look`` seeds."""
    return int(np.sum(outcome.positions < look))


def _replay(family: list[Outcome], looks: tuple[int, ...]) -> None:
    """Walk the looks: at each, the e-values of the family's open comparisons (the stopped ones
    frozen at their stop), adjusted together; a comparison stops once its decision is reached."""
    first = family[0].comparison
    threshold = 1.0 / first.alpha
    for outcome in family:
        result = _tests(outcome)
        outcome.e_values = {} if result is None else {
            key: value for key, value in (("difference", result.e_difference),
                                          ("above", result.e_above_margin),
                                          ("below", result.e_below_margin)) if value is not None}
    rejected: dict[tuple[int, str], bool] = {}
    for look in looks:
        open_ = [o for o in family if o.stopped_at is None]
        if any(o.scheduled < look for o in open_):
            for o in open_:
                o.needs = look
            return
        hypotheses = []
        for index, o in enumerate(family):
            count = pairs_by(o, o.stopped_at or look)
            for kind in _kinds(o.comparison.decide):
                hypotheses.append(((index, kind), _e_at(o, kind, count)))
        adjusted = adjust_e_values(np.array([e for _, e in hypotheses]), first.correction)
        for (key, _), value in zip(hypotheses, adjusted, strict=True):
            rejected[key] = rejected.get(key, False) or bool(value >= threshold)
        for index, o in enumerate(family):
            if o.stopped_at is not None:
                continue
            o.difference = rejected.get((index, "difference"), False)
            o.equivalence = rejected.get((index, "equivalence"), False)
            wanted = {"difference": o.difference, "equivalence": o.equivalence,
                      "both": o.difference or o.equivalence}[o.comparison.decide]
            if wanted:
                o.stopped_at = look
                o.needs = look
                o.direction = _direction(o, pairs_by(o, look))
        if all(o.stopped_at is not None for o in family):
            return
    for o in family:
        if o.stopped_at is None:
            o.needs = looks[-1]


def _kinds(decide: str) -> tuple[str, ...]:
    return ("difference", "equivalence") if decide == "both" else (decide,)


def _tests(outcome: Outcome) -> SequentialResult | None:
    if outcome.differences.size == 0:
        return None
    c = outcome.comparison
    return sequential_decision(outcome.differences, c.alpha, margin=c.margin, decision=c.decide)


def _e_at(outcome: Outcome, kind: str, count: int) -> float:
    """The comparison's e-value for ``kind`` after ``count`` pairs (1 before any): the difference
    e-process, or for equivalence the smaller of the two one-sided ones (an e-value for the union
    of the two nulls, which is what equivalence rejects)."""
    if count == 0 or not outcome.e_values:
        return 1.0
    if kind == "difference":
        return float(outcome.e_values["difference"][count - 1])
    return float(min(outcome.e_values["above"][count - 1], outcome.e_values["below"][count - 1]))


def _direction(outcome: Outcome, count: int) -> str:
    if not outcome.difference or count == 0:
        return ""
    return "greater" if float(np.mean(outcome.differences[:count])) > 0 else "less"


def outcome_table(outcomes: list[Outcome], max_seeds: int) -> pd.DataFrame:
    """One row per comparison: its decision, the seeds it took, its last e-values and its
    confidence sequence's last interval for the mean difference."""
    rows = []
    for o in outcomes:
        c = o.comparison
        count = pairs_by(o, o.stopped_at or o.scheduled)
        lower = upper = np.nan
        if count:
            low, high = confidence_sequence(o.differences[:count], c.alpha)
            lower, upper = float(low[-1]), float(high[-1])
        rows.append({
            "dataset": c.dataset, "test": c.test, "comparison": c.label, "metric": c.metric,
            "decide": c.decide, "margin": c.margin, "alpha": c.alpha, "correction": c.correction,
            "decision": _decision(o, max_seeds),
            "direction": o.direction, "seeds_at_decision": o.stopped_at,
            "seeds_scheduled": o.scheduled, "pairs": count,
            "e_difference": _e_at(o, "difference", count) if "difference" in o.e_values else np.nan,
            "e_equivalence": _e_at(o, "equivalence", count) if "above" in o.e_values else np.nan,
            "mean_difference": float(np.mean(o.differences[:count])) if count else np.nan,
            "cs_lower": lower, "cs_upper": upper,
        })
    return pd.DataFrame(rows)


def _decision(outcome: Outcome, max_seeds: int) -> str:
    """``"difference"``, ``"equivalence"``, both joined by "and", or why there is none yet."""
    declared = [kind for kind, held in (("difference", outcome.difference),
                                        ("equivalence", outcome.equivalence)) if held]
    if declared:
        return " and ".join(declared)
    ended = outcome.needs >= max_seeds and outcome.scheduled >= max_seeds
    return "undecided at max_seeds" if ended else "undecided so far"
