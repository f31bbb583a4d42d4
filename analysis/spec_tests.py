"""The spec's ``tests:`` and ``paper:`` sections: validate them, then run every declared test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import correction
from analysis.factor import ASSUMPTIONS, BLOCKINGS, Blocks, factor_blocks, factor_design
from analysis.friedman import friedman
from analysis.posthoc import all_pairs, critical_difference
from analysis.results import METRICS, MIN_BLOCKS, missing_data, paired_values
from analysis.wilcoxon import ALTERNATIVES, METHOD_TEXT, METHODS, ZERO_METHODS, signed_rank

KINDS = ("friedman", "friedman_factor", "wilcoxon")
COMMON_DEFAULTS: dict[str, Any] = {
    "metric": "fg_ari",
    "correction": "holm",
    "alpha": 0.05,
    "description": None,
}
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
PAPER_KEYS = ("medians", "p_values", "stop_effect")
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
    if full["description"] is not None and not isinstance(full["description"], str):
        problems.append(f"{where}.description: {full['description']!r} must be text")
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
            elif key in ("medians", "stop_effect"):
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


@dataclass(frozen=True)
class Analysis:
    """Every declared comparison (``tests``, :data:`TEST_COLUMNS`) and the all-pairs post-hoc
    tests after each Friedman comparison with k >= 3 (``posthoc``, :data:`POSTHOC_COLUMNS`)."""

    tests: pd.DataFrame
    posthoc: pd.DataFrame


def run_tests(
    tests: Sequence[Mapping[str, Any]],
    results: pd.DataFrame,
    datasets: Sequence[str],
    parameters: Sequence[str],
    paper: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per dataset x test x declared comparison, corrected within each family."""
    return analyse(tests, results, datasets, parameters, paper).tests


def analyse(
    tests: Sequence[Mapping[str, Any]],
    results: pd.DataFrame,
    datasets: Sequence[str],
    parameters: Sequence[str],
    paper: Mapping[str, Any] | None = None,
) -> Analysis:
    """Run every declared test on every dataset; a comparison that cannot be computed is a row
    with a ``note`` saying what is missing, and stays in its correction family (m)."""
    rows, posthoc = [], []
    for dataset in datasets:
        for raw in tests:
            test = normalise_test(raw)
            comparisons = _comparisons(results, dataset, test, parameters)
            family = [_comparison_row(dataset, test, c) for c in comparisons]
            _correct(family, test)
            for row, comparison in zip(family, comparisons, strict=True):
                row["paper_p"] = _paper_p(paper, dataset, test, row["comparison"])
                posthoc += _posthoc_rows(row, comparison)
            rows += family
    return Analysis(
        pd.DataFrame(
            [{c: r.get(c, "" if c in _TEXT else np.nan) for c in TEST_COLUMNS} for r in rows],
            columns=TEST_COLUMNS,
        ),
        pd.DataFrame(posthoc, columns=POSTHOC_COLUMNS),
    )


TEST_COLUMNS = [
    "dataset", "test", "kind", "comparison", "metric", "statistic_name", "statistic", "df", "z",
    "p_value", "p_adjusted", "correction", "m", "alpha", "reject", "rule", "method", "blocking",
    "n_blocks", "n", "n_dropped", "n_zero", "n_tied", "dropped", "note", "mean_ranks",
    "median_difference", "kendall_w", "rank_biserial", "hl_shift", "hl_ci_low", "hl_ci_high",
    "direction", "variant", "assumptions", "description", "paper_p",
]  # fmt: skip
_TEXT = {"method", "mean_ranks", "direction"}
POSTHOC_COLUMNS = [
    "dataset", "test", "comparison", "first", "second", "mean_rank_first", "mean_rank_second",
    "rank_difference", "nemenyi_q", "nemenyi_p", "cd", "conover_t", "conover_p",
    "conover_p_holm", "m", "alpha", "nemenyi_reject", "conover_reject", "omnibus_p",
]  # fmt: skip


@dataclass(frozen=True)
class _Comparison:
    """A declared comparison: its blocks, or ``problem`` when it cannot be computed."""

    label: str
    variant: str
    blocks: Blocks | None = None
    blocking: str = ""
    problem: str = ""


def _comparisons(
    results: pd.DataFrame, dataset: str, test: dict[str, Any], parameters: Sequence[str]
) -> list[_Comparison]:
    name, metric, kind = test["name"], test["metric"], test["kind"]
    if kind == "wilcoxon":
        out = []
        for first, second in test["pairs"]:
            label = pair_label(first, second)
            variant = (
                f"Wilcoxon signed-rank, paired by seed, d = {first} - {second}; "
                f"zero_method={test['zero_method']}, method={test['method']}, "
                f"continuity={test['continuity']}, alternative={test['alternative']}"
            )
            problems = missing_data(results, dataset, [first, second], metric)
            if problems:
                out.append(_Comparison(label, variant, problem="; ".join(problems)))
                continue
            wide, dropped = paired_values(results, dataset, [first, second], metric, name)
            blocks = Blocks(label, wide.to_numpy(), dropped, len(dropped), (first, second))
            out.append(_Comparison(label, variant, blocks))
        return out
    conditions = test["conditions"]
    label = ", ".join(conditions)
    if kind == "friedman":
        variant = f"Friedman omnibus over {label}; blocks = seed" + _FRIEDMAN_VARIANT
    else:
        variant = f"Friedman about {test['factor']}, blocking {test['blocking']}"
        variant += _FRIEDMAN_VARIANT
        label = f"{test['factor']} ({test['blocking']})"
    problems = missing_data(results, dataset, conditions, metric)
    if problems:
        return [
            _Comparison(
                label, variant, blocking=test.get("blocking") or "", problem="; ".join(problems)
            )
        ]
    if kind == "friedman":
        wide, dropped = paired_values(results, dataset, conditions, metric, name)
        blocks = Blocks(label, wide.to_numpy(), dropped, len(dropped), tuple(conditions))
        return [_Comparison(label, variant, blocks, "seed")]
    try:
        design = factor_design(results, dataset, conditions, test["factor"], parameters)
    except ValueError as error:
        return [_Comparison(label, variant, blocking=test["blocking"], problem=str(error))]
    blocks = factor_blocks(results, dataset, design, metric, test["blocking"], name)
    return [_Comparison(b.label, variant, b, test["blocking"]) for b in blocks]


_FRIEDMAN_VARIANT = "; average ranks within blocks, tie-corrected chi-square, p = chi2(k-1).sf"


def _comparison_row(dataset: str, test: dict[str, Any], comparison: _Comparison) -> dict:
    row: dict[str, Any] = {
        "dataset": dataset,
        "test": test["name"],
        "kind": test["kind"],
        "comparison": comparison.label,
        "metric": test["metric"],
        "statistic_name": "W" if test["kind"] == "wilcoxon" else "chi2",
        "blocking": comparison.blocking,
        "variant": comparison.variant,
        "description": test["description"] or "",
        "note": "",
        "dropped": "",
        "n_dropped": 0,
        "assumptions": _assumptions(test, comparison.blocking),
    }
    where = f"test {test['name']}, dataset {dataset}, {comparison.label}"
    if comparison.blocks is None:
        row.update(note=f"not computed ({where}): {comparison.problem}", n_blocks=0, n=0)
        return row
    blocks = comparison.blocks
    values = blocks.values
    row.update(
        n_blocks=len(values),
        n=len(values),
        n_dropped=blocks.n_dropped,
        dropped=DROPPED_SEPARATOR.join(blocks.dropped),
    )
    informative = int(np.sum(np.ptp(values, axis=1) > 0)) if len(values) else 0
    if len(values) < MIN_BLOCKS:
        row["note"] = (
            f"not computed ({where}): too few complete blocks (n={len(values)}; "
            f"{MIN_BLOCKS} needed)"
        )
        return row
    if informative == 0:
        row["note"] = f"not computed ({where}): all {len(values)} blocks tied (no difference)"
        return row
    if test["kind"] == "wilcoxon":
        _wilcoxon_row(row, test, blocks)
    else:
        _friedman_row(row, blocks)
    return row


def _wilcoxon_row(row: dict, test: dict[str, Any], blocks: Blocks) -> None:
    res = signed_rank(
        blocks.values[:, 0],
        blocks.values[:, 1],
        zero_method=test["zero_method"],
        method=test["method"],
        continuity=test["continuity"],
        alternative=test["alternative"],
    )
    first, second = blocks.columns
    row["variant"] += (
        f" -> {METHOD_TEXT[res.method]}; HL 95% CI: {res.ci_method} Walsh order statistics"
    )
    sign = ">" if res.hl_shift > 0 else "<" if res.hl_shift < 0 else "="
    row.update(
        statistic=res.statistic, p_value=res.pvalue, n=res.n, z=res.z, method=res.method,
        n_zero=res.n_zero, n_tied=res.n_tied, rank_biserial=res.rank_biserial,
        median_difference=float(np.median(blocks.values[:, 0] - blocks.values[:, 1])),
        hl_shift=res.hl_shift, hl_ci_low=res.ci_low, hl_ci_high=res.ci_high,
        direction=f"{first} {sign} {second}",
    )  # fmt: skip
    zeros = {
        "wilcox": "dropped before ranking (n counts the non-zero differences)",
        "pratt": "ranked, then their ranks dropped (Pratt)",
        "zsplit": "their ranks split between W+ and W-",
    }[test["zero_method"]]
    row["assumptions"] += (
        f"; {res.n_pairs} pairs, {res.n_zero} zero differences ({zeros}), {res.n_tied} non-zero "
        f"differences tied in |d|; HL and its interval over all {res.n_pairs} pairs, zeros included"
    )


def _friedman_row(row: dict, blocks: Blocks) -> None:
    res = friedman(blocks.values)
    row.update(
        statistic=res.statistic, df=res.df, p_value=res.pvalue, kendall_w=res.kendall_w,
        z=res.z, method="chi-square approximation", n_zero=res.n_all_tied, n_tied=res.n_tied,
        mean_ranks="; ".join(
            f"{c}: {r:.3g}" for c, r in zip(blocks.columns, res.mean_ranks, strict=True)
        ),
    )  # fmt: skip
    if res.k == 2:
        first, second = blocks.columns
        difference = blocks.values[:, 0] - blocks.values[:, 1]
        sign = ">" if res.z > 0 else "<" if res.z < 0 else "="
        row.update(
            median_difference=float(np.median(difference)), direction=f"{first} {sign} {second}"
        )
    row["assumptions"] += (
        f"; {res.n} blocks, {res.n_all_tied} all tied (no information), {res.n_tied} with a tie"
    )


def _assumptions(test: dict[str, Any], blocking: str) -> str:
    if test["kind"] == "wilcoxon":
        return "pairs = seeds (independent runs); differences symmetric about their median"
    if test["kind"] == "friedman":
        return "blocks = seeds (independent runs)"
    return ASSUMPTIONS.get(blocking, "")


def _posthoc_rows(row: dict, comparison: _Comparison) -> list[dict]:
    """Nemenyi and Conover-Holm for a computed Friedman row with k >= 3 treatments."""
    if row["kind"] == "wilcoxon" or row["note"] or row["df"] < 2 or comparison.blocks is None:
        return []
    values, names = comparison.blocks.values, comparison.blocks.columns
    n, k = values.shape
    means = friedman(values).mean_ranks
    cd = critical_difference(k, n, row["alpha"])
    pairs = all_pairs(values)
    return [
        {
            "dataset": row["dataset"],
            "test": row["test"],
            "comparison": row["comparison"],
            "first": names[r.first],
            "second": names[r.second],
            "mean_rank_first": means[r.first],
            "mean_rank_second": means[r.second],
            "rank_difference": r.rank_difference,
            "nemenyi_q": r.nemenyi_q,
            "nemenyi_p": r.nemenyi_p,
            "cd": cd,
            "conover_t": r.conover_t,
            "conover_p": r.conover_p,
            "conover_p_holm": r.conover_p_holm,
            "m": len(pairs),
            "alpha": row["alpha"],
            "nemenyi_reject": bool(r.nemenyi_p <= row["alpha"]),
            "conover_reject": bool(r.conover_p_holm <= row["alpha"]),
            "omnibus_p": row["p_value"],
        }  # fmt: skip
        for r in pairs
    ]


def _correct(family: list[dict], test: dict[str, Any]) -> None:
    p = np.array([row.get("p_value", np.nan) for row in family], dtype=float)
    adjusted = correction.adjust(p, test["correction"])
    decisions = correction.reject(adjusted, test["alpha"])
    m = len(family)
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
