"""The spec's ``tests:`` and ``paper:`` sections: validate them, then run every declared test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis import correction
from analysis.factor import BLOCKINGS, Blocks, factor_blocks, factor_design
from analysis.friedman import friedman
from analysis.results import METRICS, MIN_BLOCKS, paired_values
from analysis.wilcoxon import ALTERNATIVES, METHODS, ZERO_METHODS, signed_rank

KINDS = ("friedman", "friedman_factor", "wilcoxon")
COMMON_DEFAULTS: dict[str, Any] = {"metric": "fg_ari", "correction": "holm", "alpha": 0.05}
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "friedman": {"conditions": None},
    "friedman_factor": {"conditions": None, "factor": None, "blocking": None},
    "wilcoxon": {
        "pairs": None,
        "zero_method": "wilcox",
        "method": "auto",
        "continuity": False,
        "alternative": "two-sided",
    },
}
CHOICES = {
    "metric": METRICS,
    "correction": correction.CORRECTIONS,
    "blocking": BLOCKINGS,
    "zero_method": ZERO_METHODS,
    "method": METHODS,
    "alternative": ALTERNATIVES,
}
PAPER_KEYS = ("medians", "p_values")
#: Joins the dropped-block messages of one comparison in the ``dropped`` column of tests.csv.
DROPPED_SEPARATOR = " | "


def pair_label(first: str, second: str) -> str:
    """``"NLL+M vs IR+M"``: the comparison name of a Wilcoxon pair (the key in paper.p_values)."""
    return f"{first} vs {second}"


def normalise_test(test: Mapping[str, Any]) -> dict[str, Any]:
    """A validated test with every default filled in."""
    return {**COMMON_DEFAULTS, **KIND_DEFAULTS[test["kind"]], **test}


def validate_tests(
    tests: Any, paper: Any, conditions: Sequence[str], datasets: Sequence[str]
) -> list[str]:
    """One message per problem in ``tests:`` and ``paper:``: the key path and the allowed values."""
    problems: list[str] = []
    if tests is None:
        tests = []
    if not isinstance(tests, list):
        return [f"tests: expected a list of test mappings, got {type(tests).__name__}"]
    names: list[str] = []
    for i, test in enumerate(tests):
        problems += _validate_test(f"tests[{i}]", test, list(conditions), names)
    problems += _validate_paper(paper, tests, list(conditions), list(datasets))
    return problems


def _validate_test(where: str, test: Any, conditions: list[str], names: list[str]) -> list[str]:
    if not isinstance(test, Mapping):
        return [f"{where}: expected a mapping, got {type(test).__name__}"]
    problems = []
    kind = test.get("kind")
    if kind not in KINDS:
        return [f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}"]
    name = test.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}.name: required, a non-empty string")
    elif name in names:
        problems.append(f"{where}.name: {name!r} is used by an earlier test (names must be unique)")
    else:
        names.append(name)
    allowed = ["name", "kind", *COMMON_DEFAULTS, *KIND_DEFAULTS[kind]]
    for key in test:
        if key not in allowed:
            problems.append(
                f"{where}.{key}: unknown key for kind {kind} (allowed: {', '.join(allowed)})"
            )
    full = normalise_test(test)
    for key, options in CHOICES.items():
        if key in full and full[key] not in options:
            problems.append(f"{where}.{key}: {full[key]!r} is not one of {', '.join(options)}")
    alpha = full["alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        problems.append(f"{where}.alpha: {alpha!r} must be a number in (0, 1)")
    if kind == "wilcoxon":
        if not isinstance(full["continuity"], bool):
            problems.append(f"{where}.continuity: {full['continuity']!r} must be true or false")
        problems += _validate_pairs(f"{where}.pairs", full["pairs"], conditions)
        return problems
    problems += _validate_conditions(f"{where}.conditions", full["conditions"], conditions)
    if kind == "friedman_factor":
        for key in ("factor", "blocking"):
            if full[key] is None:
                options = (
                    "a parameter column, e.g. beta" if key == "factor" else ", ".join(BLOCKINGS)
                )
                problems.append(f"{where}.{key}: required for kind friedman_factor ({options})")
        if full["factor"] is not None and not isinstance(full["factor"], str):
            problems.append(f"{where}.factor: {full['factor']!r} must be a parameter column name")
    return problems


def _validate_conditions(where: str, listed: Any, conditions: list[str]) -> list[str]:
    if not isinstance(listed, list) or len(listed) < 2:
        return [f"{where}: required, a list of >= 2 conditions (allowed: {', '.join(conditions)})"]
    problems = [
        f"{where}[{j}]: {c!r} is not a condition (allowed: {', '.join(conditions)})"
        for j, c in enumerate(listed)
        if c not in conditions
    ]
    if len(set(map(str, listed))) < len(listed):
        problems.append(f"{where}: lists a condition twice")
    return problems


def _validate_pairs(where: str, pairs: Any, conditions: list[str]) -> list[str]:
    if not isinstance(pairs, list) or not pairs:
        return [f"{where}: required, a list of [first, second] condition pairs"]
    problems = []
    for j, pair in enumerate(pairs):
        if not isinstance(pair, list) or len(pair) != 2:
            problems.append(f"{where}[{j}]: expected [first, second], got {pair!r}")
            continue
        for side, c in enumerate(pair):
            if c not in conditions:
                problems.append(
                    f"{where}[{j}][{side}]: {c!r} is not a condition "
                    f"(allowed: {', '.join(conditions)})"
                )
        if pair[0] == pair[1]:
            problems.append(f"{where}[{j}]: compares {pair[0]!r} with itself")
    return problems


def _validate_paper(
    paper: Any, tests: list, conditions: list[str], datasets: list[str]
) -> list[str]:
    if paper is None:
        return []
    if not isinstance(paper, Mapping):
        return [f"paper: expected a mapping with keys {', '.join(PAPER_KEYS)}"]
    problems = [
        f"paper.{key}: unknown key (allowed: {', '.join(PAPER_KEYS)})"
        for key in paper
        if key not in PAPER_KEYS
    ]
    by_name = {t.get("name"): t for t in tests if isinstance(t, Mapping)}
    for key in PAPER_KEYS:
        section = paper.get(key)
        if section is None:
            continue
        if not isinstance(section, Mapping):
            problems.append(f"paper.{key}: expected a mapping of dataset -> values")
            continue
        for dataset, values in section.items():
            where = f"paper.{key}.{dataset}"
            if dataset not in datasets:
                problems.append(
                    f"{where}: {dataset!r} is not a dataset (allowed: {', '.join(datasets)})"
                )
            elif not isinstance(values, Mapping):
                problems.append(f"{where}: expected a mapping")
            elif key == "medians":
                problems += _validate_medians(where, values, conditions)
            else:
                problems += _validate_p_values(where, values, by_name)
    return problems


def _validate_medians(where: str, values: Mapping, conditions: list[str]) -> list[str]:
    problems = []
    for condition, value in values.items():
        if condition not in conditions:
            problems.append(
                f"{where}.{condition}: not a condition (allowed: {', '.join(conditions)})"
            )
        elif not _is_number(value):
            problems.append(f"{where}.{condition}: {value!r} must be a number")
    return problems


def _validate_p_values(where: str, values: Mapping, by_name: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, value in values.items():
        test = by_name.get(name)
        if test is None:
            problems.append(
                f"{where}.{name}: not a test name (allowed: {', '.join(map(str, by_name))})"
            )
        elif test.get("kind") != "wilcoxon":
            if not _is_p(value):
                problems.append(f"{where}.{name}: {value!r} must be a p-value in [0, 1]")
        elif not isinstance(value, Mapping):
            problems.append(f"{where}.{name}: expected a mapping of 'A vs B' -> p-value")
        else:
            labels = [
                pair_label(*p)
                for p in test.get("pairs") or []
                if isinstance(p, list) and len(p) == 2
            ]
            for label, p in value.items():
                if label not in labels:
                    problems.append(
                        f"{where}.{name}.{label}: not a pair of this test "
                        f"(allowed: {', '.join(labels)})"
                    )
                elif not _is_p(p):
                    problems.append(f"{where}.{name}.{label}: {p!r} must be a p-value in [0, 1]")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_p(value: Any) -> bool:
    return _is_number(value) and 0 <= value <= 1


def run_tests(
    tests: Sequence[Mapping[str, Any]],
    results: pd.DataFrame,
    datasets: Sequence[str],
    parameters: Sequence[str],
    paper: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per dataset x test x comparison, corrected within each (dataset, test) family."""
    rows = []
    for dataset in datasets:
        for raw in tests:
            test = normalise_test(raw)
            family = [
                _comparison_row(dataset, test, c)
                for c in _comparisons(results, dataset, test, parameters)
            ]
            _correct(family, test)
            for row in family:
                row["paper_p"] = _paper_p(paper, dataset, test, row["comparison"])
            rows += family
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


TEST_COLUMNS = [
    "dataset", "test", "kind", "comparison", "metric", "statistic_name", "statistic", "df",
    "p_value", "p_adjusted", "correction", "m", "alpha", "reject", "rule", "n", "n_dropped",
    "dropped", "note", "kendall_w", "rank_biserial", "hl_shift", "hl_ci_low", "hl_ci_high",
    "variant", "paper_p",
]  # fmt: skip


def _comparisons(
    results: pd.DataFrame, dataset: str, test: dict[str, Any], parameters: Sequence[str]
) -> list[tuple[Blocks, str]]:
    name, metric = test["name"], test["metric"]
    if test["kind"] == "friedman":
        wide, dropped = paired_values(results, dataset, test["conditions"], metric, name)
        label = ", ".join(test["conditions"])
        variant = f"Friedman omnibus over {label}; blocks = seed"
        return [(Blocks(label, wide.to_numpy(), dropped), variant + _FRIEDMAN_VARIANT)]
    if test["kind"] == "friedman_factor":
        design = factor_design(results, dataset, test["conditions"], test["factor"], parameters)
        variant = f"Friedman about {test['factor']}, blocking {test['blocking']}"
        blocks = factor_blocks(results, dataset, design, metric, test["blocking"], name)
        return [(b, variant + _FRIEDMAN_VARIANT) for b in blocks]
    out = []
    for first, second in test["pairs"]:
        label = pair_label(first, second)
        wide, dropped = paired_values(results, dataset, [first, second], metric, f"{name}: {label}")
        variant = (
            f"Wilcoxon signed-rank, paired by seed, d = {first} - {second}; "
            f"zero_method={test['zero_method']}, method={test['method']}, "
            f"continuity={test['continuity']}, alternative={test['alternative']}"
        )
        out.append((Blocks(label, wide.to_numpy(), dropped), variant))
    return out


_FRIEDMAN_VARIANT = "; average ranks within blocks, tie-corrected chi-square, p = chi2(k-1).sf"


def _comparison_row(dataset: str, test: dict[str, Any], comparison: tuple[Blocks, str]) -> dict:
    blocks, variant = comparison
    values = blocks.values
    row: dict[str, Any] = {
        "dataset": dataset,
        "test": test["name"],
        "kind": test["kind"],
        "comparison": blocks.label,
        "metric": test["metric"],
        "statistic_name": "W" if test["kind"] == "wilcoxon" else "chi2",
        "n": len(values),
        "n_dropped": len(blocks.dropped),
        "dropped": DROPPED_SEPARATOR.join(blocks.dropped),
        "variant": variant,
        "note": "",
    }
    informative = int(np.sum(np.ptp(values, axis=1) > 0)) if len(values) else 0
    if len(values) < MIN_BLOCKS or informative == 0:
        detail = "" if informative else "; 0 non-zero differences"
        row["note"] = f"too few blocks (n={len(values)}{detail})"
        return row
    if test["kind"] == "wilcoxon":
        res = signed_rank(
            values[:, 0],
            values[:, 1],
            zero_method=test["zero_method"],
            method=test["method"],
            continuity=test["continuity"],
            alternative=test["alternative"],
        )
        if test["method"] == "auto":
            row["variant"] += f" (auto -> {res.method})"
        row["variant"] += f"; HL 95% CI: {res.ci_method} Walsh order statistics"
        row.update(
            statistic=res.statistic, p_value=res.pvalue, n=res.n, rank_biserial=res.rank_biserial,
            hl_shift=res.hl_shift, hl_ci_low=res.ci_low, hl_ci_high=res.ci_high,
        )  # fmt: skip
        return row
    res = friedman(values)
    row.update(statistic=res.statistic, df=res.df, p_value=res.pvalue, kendall_w=res.kendall_w)
    return row


def _correct(family: list[dict], test: dict[str, Any]) -> None:
    p = np.array([row.get("p_value", np.nan) for row in family], dtype=float)
    adjusted = correction.adjust(p, test["correction"])
    decisions = correction.reject(adjusted, test["alpha"])
    m = int(np.sum(~np.isnan(p)))
    for row, p_adj, decision in zip(family, adjusted, decisions, strict=True):
        row.update(
            p_adjusted=p_adj,
            correction=test["correction"],
            m=m,
            alpha=test["alpha"],
            reject=bool(decision) if not np.isnan(p_adj) else None,
            rule=correction.rule(test["correction"], m, test["alpha"]),
        )


def _paper_p(paper: Mapping[str, Any] | None, dataset: str, test: dict, comparison: str) -> float:
    value = ((paper or {}).get("p_values") or {}).get(dataset, {}).get(test["name"])
    if isinstance(value, Mapping):
        value = value.get(comparison)
    return float(value) if _is_number(value) else float("nan")
