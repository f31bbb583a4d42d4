"""The findings table: per claim of the paper (the spec's ``paper:`` block), the paper's figure,
ours, and a verdict.

Verdicts (the same words in every report):

- ``reproduced``: the same test decision at the spec's alpha and correction, and where the paper
  finds a difference, the same direction. For a claim of no difference: we do not reject either.
- ``direction only``: the paper finds a difference; ours points the same way but is not
  significant.
- ``not reproduced``: the opposite direction, or a significant difference where the paper finds
  none.
- ``not testable at this scale``: the comparison could not be computed, or its smallest
  attainable p-value with this many blocks (after the correction) is above alpha, so no data
  could have reproduced a significant result.

The paper's decision uses the paper's own p-values, corrected as the spec's test corrects ours
(a printed 0 counts as significant); its direction comes from its medians (for a factor: the
mean of the medians of each level's conditions). Medians rows compare the order of the
conditions only: the order of every two conditions whose paper medians differ by at least
:data:`MEDIAN_GAP`, or, where all the paper's medians lie within it ("about the same"), whether
ours do too. The Table 1 row compares the largest |ratio| of (metric at max_steps - metric
when the rule fired) to the condition's median with :data:`STOP_RATIO_LIMIT` percent, the bound
that holds for every ratio the paper prints (largest 0.86%).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.correction import adjust
from analysis.formatting import format_number, format_p, format_paper_p

VERDICTS = ("reproduced", "direction only", "not reproduced", "not testable at this scale")
#: Two paper medians closer than this are not an ordering claim.
MEDIAN_GAP = 0.05
#: Table 1's "sufficiently small": every ratio the paper prints is within +-0.86%.
STOP_RATIO_LIMIT = 1.0
COLUMNS = ["claim", "dataset", "paper", "ours", "verdict", "why"]


def findings_table(
    spec: Mapping[str, Any],
    tests: pd.DataFrame,
    summary: pd.DataFrame,
    stop: pd.DataFrame,
    results: pd.DataFrame,
    metric: str = "fg_ari",
) -> pd.DataFrame:
    """One row per claim in ``spec["paper"]``: medians (per dataset), each declared comparison
    with a paper p-value, and Table 1 (``paper.stop_effect``); empty without a paper block."""
    paper = spec.get("paper") or {}
    medians = paper.get("medians") or {}
    rows = []
    for dataset, values in medians.items():
        rows.append(_median_row(dataset, values, summary, metric))
    for _, family in tests.groupby(["dataset", "test"], sort=False):
        if family["paper_p"].notna().any():
            rows += _test_rows(family, medians.get(family["dataset"].iloc[0], {}), results)
    for dataset, values in (paper.get("stop_effect") or {}).items():
        rows.append(_stop_row(dataset, values, stop, metric))
    return pd.DataFrame(rows, columns=COLUMNS)


def _median_row(dataset: str, paper: Mapping[str, float], summary: pd.DataFrame,
                metric: str) -> dict[str, str]:
    ours = summary[summary["dataset"] == dataset].set_index("condition")[f"{metric}_median"]
    conditions = [c for c in paper if c in ours.index]
    row = {"claim": f"{metric} medians of {', '.join(paper)}", "dataset": dataset,
           "paper": ", ".join(format_number(paper[c], 2) for c in paper),
           "ours": ", ".join(format_number(ours.get(c, np.nan)) for c in paper)}
    if any(np.isnan(ours[c]) for c in conditions) or len(conditions) < len(paper):
        return {**row, "verdict": VERDICTS[3], "why": "a condition has no ok runs"}
    claims = [(a, b) for i, a in enumerate(conditions) for b in conditions[i + 1:]
              if abs(paper[a] - paper[b]) >= MEDIAN_GAP]
    if not claims:  # the paper's medians are about equal: so should ours be
        spread = float(ours[conditions].max() - ours[conditions].min())
        verdict = VERDICTS[0] if spread < MEDIAN_GAP else VERDICTS[2]
        return {**row, "verdict": verdict,
                "why": f"paper medians all within {MEDIAN_GAP}; ours span "
                       f"{format_number(spread)}"}
    flipped = [f"{a} {'>' if ours[a] > ours[b] else '<='} {b}" for a, b in claims
               if (ours[a] > ours[b]) != (paper[a] > paper[b])]
    if flipped:
        return {**row, "verdict": "not reproduced",
                "why": f"order differs: ours {'; '.join(flipped)}"}
    return {**row, "verdict": "reproduced",
            "why": f"same order of the {len(claims)} pair(s) whose paper medians differ by >= "
                   f"{MEDIAN_GAP} (levels are not compared)"}


def _test_rows(family: pd.DataFrame, medians: Mapping[str, float],
               results: pd.DataFrame) -> list[dict[str, str]]:
    correction = family["correction"].iloc[0]
    paper_adjusted = adjust(family["paper_p"].to_numpy(dtype=float), correction)
    rows = []
    for (_, r), paper_p in zip(family.iterrows(), paper_adjusted, strict=True):
        alpha, m = float(r["alpha"]), int(r["m"]) if not np.isnan(r["m"]) else 1
        paper_sign = _paper_sign(r, medians, results)
        paper_significant = bool(paper_p <= alpha)
        claim = (r["comparison"] if r["comparison"].startswith(f"{r['test']}:")
                 else f"{r['test']}: {r['comparison']}")
        row = {"claim": claim, "dataset": r["dataset"],
               "paper": _paper_text(r["paper_p"], paper_p, correction, paper_sign, r)}
        if r["note"] or np.isnan(r["p_value"]):
            rows.append({**row, "ours": "not computed", "verdict": VERDICTS[3],
                         "why": r["note"] or "no p-value"})
            continue
        ours_sign = float(np.sign(r["median_difference"]))
        ours_significant = bool(r["reject"])
        row["ours"] = (f"p = {format_p(r['p_value'])}"
                       + (f" ({correction} at m = {m}: {format_p(r['p_adjusted'])})"
                          if correction != "none" and m > 1 else "")
                       + f", {r['direction'] or 'no difference'}, n = {int(r['n'])}")
        rows.append({**row, **_verdict(paper_significant, paper_sign, ours_significant,
                                       ours_sign, _smallest_p(r) * (m if correction != "none"
                                                                     else 1), alpha)})
    return rows


def _verdict(paper_significant: bool, paper_sign: float, ours_significant: bool,
             ours_sign: float, smallest_p: float, alpha: float) -> dict[str, str]:
    if not paper_significant:
        if ours_significant:
            return {"verdict": VERDICTS[2],
                    "why": "we find a significant difference where the paper finds none"}
        return {"verdict": VERDICTS[0], "why": "neither rejects"}
    same_way = paper_sign != 0 and ours_sign == paper_sign
    if ours_significant:
        return ({"verdict": VERDICTS[0], "why": "both reject, same direction"} if same_way
                else {"verdict": VERDICTS[2], "why": "we reject in the opposite direction"})
    if smallest_p > alpha:
        return {"verdict": VERDICTS[3],
                "why": f"the smallest p this many blocks can give is {format_p(smallest_p)} "
                       f"> alpha {alpha:g}" + ("; same direction" if same_way else "")}
    if same_way:
        return {"verdict": VERDICTS[1], "why": "same direction, not significant"}
    return {"verdict": VERDICTS[2], "why": "not significant, and not the paper's direction"}


def _smallest_p(row: pd.Series) -> float:
    """The smallest p-value the test could give with ``n`` blocks (all differences one way)."""
    n = int(row["n"])
    if row["kind"] == "wilcoxon":
        if row["method"] == "exact":
            return min(1.0, 2.0 * 0.5**n)
        w = n * (n + 1) / 4
        return float(2 * stats.norm.sf(w / np.sqrt(n * (n + 1) * (2 * n + 1) / 24)))
    if row["kind"] == "friedman_factor":  # k = 2: the two-sided sign test, chi2 = n
        return float(stats.chi2.sf(n, 1))
    return 0.0  # omnibus Friedman: not a paper claim here; never "not testable"


def _sides(row: pd.Series) -> tuple[str, str] | None:
    """The comparison's two sides: conditions of a pair (``A vs B``) or a factor's levels
    (``beta: 0.5 vs 0 (blocks: ...)``); None when the row names no sides (not computed)."""
    text = row["comparison"]
    if row["kind"] != "wilcoxon":
        if ": " not in text:
            return None
        text = text.split(": ", 1)[1].split(" (", 1)[0]
    sides = text.split(" vs ")
    return (sides[0], sides[1]) if len(sides) == 2 else None


def _paper_sign(row: pd.Series, medians: Mapping[str, float], results: pd.DataFrame) -> float:
    """+1 when the paper's medians put the comparison's first side above its second, -1 below,
    0 when equal or unknown."""
    sides = _sides(row)
    if sides is None:
        return 0.0
    if row["kind"] == "wilcoxon":
        if sides[0] not in medians or sides[1] not in medians:
            return 0.0
        return float(np.sign(medians[sides[0]] - medians[sides[1]]))
    factor = row["comparison"].split(":", 1)[0]
    if factor not in results.columns:
        return 0.0
    levels = results.drop_duplicates("condition").set_index("condition")[factor]

    def level_mean(level: str) -> float:
        values = [medians[c] for c in medians if _same_level(levels.get(c), level)]
        return float(np.mean(values)) if values else np.nan

    difference = level_mean(sides[0]) - level_mean(sides[1])
    return 0.0 if np.isnan(difference) else float(np.sign(difference))


def _same_level(value: Any, level: str) -> bool:
    """Whether a results-table value is the level printed in a comparison (``0`` is ``0.0``)."""
    try:
        return float(value) == float(level)
    except (TypeError, ValueError):
        return str(value) == level


def _paper_text(raw: float, adjusted: float, correction: str, sign: float,
                row: pd.Series) -> str:
    text = "p = " + format_paper_p(raw)
    if correction != "none" and row["m"] > 1:
        text += f" ({correction} at m = {int(row['m'])}: {format_p(adjusted)})"
    sides = _sides(row)
    if sides is None:
        return text
    if row["kind"] != "wilcoxon":
        factor = row["comparison"].split(":", 1)[0]
        sides = (f"{factor}={sides[0]}", f"{factor}={sides[1]}")
    relation = {1.0: ">", -1.0: "<", 0.0: "="}[sign]
    return f"{text}, medians {sides[0]} {relation} {sides[1]}"


def _stop_row(dataset: str, paper: Mapping[str, float], stop: pd.DataFrame,
              metric: str) -> dict[str, str]:
    largest = max(abs(float(v)) for v in paper.values())
    row = {"claim": "Table 1: stopping at the rule changes the metric little",
           "dataset": dataset,
           "paper": f"differences {', '.join(f'{c}: {float(v):.1e}' for c, v in paper.items())}"
                    f" (largest |difference| {largest:.1e})"}
    ours = stop[(stop["dataset"] == dataset) & (stop["metric"] == metric)]
    if ours.empty:
        return {**row, "ours": "no continued run reached max_steps after the rule fired",
                "verdict": VERDICTS[3],
                "why": "the stopping rule never fired in a continued run"}
    worst = float(ours["ratio_percent"].abs().max())
    row["ours"] = ", ".join(f"{r['condition']}: {r['difference']:.1e} ({r['ratio_percent']:.2g}%,"
                            f" n = {int(r['n'])})" for _, r in ours.iterrows())
    if worst <= STOP_RATIO_LIMIT:
        return {**row, "verdict": VERDICTS[0],
                "why": f"largest |ratio| {worst:.2g}% <= {STOP_RATIO_LIMIT:g}%"}
    return {**row, "verdict": VERDICTS[2],
            "why": f"largest |ratio| {worst:.2g}% > {STOP_RATIO_LIMIT:g}%"}
