"""The findings table: per claim of the paper (the spec's ``paper:`` block), the paper's figure,
ours, and a verdict.

Verdicts (the same words in every report):

- ``reproduced``: the same test decision at the spec's alpha and correction, and where the paper
  finds a difference, the same direction. For a claim of no difference: we do not reject either.
- ``direction only``: the paper finds a difference; ours points the same way but is not
  significant.
- ``not reproduced``: the opposite direction, or a significant difference where the paper finds
  none.
- ``not testable at this scale``: the comparison could not be computed; or its smallest
  attainable p-value with this many blocks (after the correction) is above alpha, so no data
  could have reproduced a significant result; or the conditions it compares have not segmented
  (:func:`at_chance`); or the spec's ``report.verdicts`` is false (a profile too small for any
  verdict, such as ``smoke``).

Beside the verdict, ``caveat`` names the conditions of a claim whose runs are not all finished
(:func:`incomplete`: the numbers come from the finished ones, a design still being trained) and
those that may be under-trained (:func:`still_moving`): their median FG-ARI or monitored MSE
still moved over the last checks; and those that have not segmented where the paper's runs did
(:func:`unlike_the_paper`): a verdict about such a condition compares one that has not started
to segment, which at a short budget looks the same as one that never will.

The paper's decision uses the paper's own p-values, corrected as the spec's test corrects ours
(a printed 0 counts as significant); its direction comes from its medians (for a factor: the
mean of the medians of each level's conditions). Medians rows compare the order of the
conditions only: the strict order of every two conditions whose paper medians differ by at least
:data:`MEDIAN_GAP` (tied medians of ours are not an order), or, where all the paper's medians lie
within it ("about the same"), whether ours do too. The Table 1 row compares the largest |ratio|
of (metric at max_steps - metric when the rule fired) to the condition's median with
:data:`STOP_RATIO_LIMIT` percent, the bound that holds for every ratio the paper prints (largest
0.86%).
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
COLUMNS = ["claim", "dataset", "paper", "ours", "verdict", "why", "caveat"]
#: The spec's ``report:`` block: the thresholds of the rules below, with their defaults.
#: ``chance_margin``: a condition whose median FG-ARI is at most the trivial segmentation's median
#: FG-ARI plus this has not segmented (:func:`at_chance`). ``under_trained``: a condition's median
#: FG-ARI moving by more than ``fg_ari`` (absolute), or its median monitored MSE by more than
#: ``mse_relative`` (relative), between its last check and the check ``checks`` before it, may be
#: under-trained (:func:`still_moving`). ``verdicts: false``: no verdict at all (smoke scale).
#: The default margin 0.2: the 4,000-step demos' NLL+M (median FG-ARI 0.17) had separated the
#: room's background but not the objects (their mask pictures), and the paper's conditions that
#: "did not segment" score 0.01-0.03.
REPORT_DEFAULTS: dict[str, Any] = {
    "chance_margin": 0.2,
    "under_trained": {"checks": 2, "fg_ari": 0.05, "mse_relative": 0.1},
    "verdicts": True,
}


def report_rules(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's ``report:`` block over :data:`REPORT_DEFAULTS` (not validated here)."""
    given = spec.get("report") or {}
    return {**REPORT_DEFAULTS, **given,
            "under_trained": {**REPORT_DEFAULTS["under_trained"],
                              **(given.get("under_trained") or {})}}


def validate_report(report: Any) -> list[str]:
    """One message per problem in the spec's ``report:`` block: key path and allowed values."""
    if report is None:
        return []
    if not isinstance(report, Mapping):
        return [f"report: expected a mapping with keys {', '.join(REPORT_DEFAULTS)}"]
    problems = [f"report.{k}: unknown key (allowed: {', '.join(REPORT_DEFAULTS)})"
                for k in report if k not in REPORT_DEFAULTS]
    margin = report.get("chance_margin", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        problems.append(f"report.chance_margin: {margin!r} is not a number in [0, 1)")
    if not isinstance(report.get("verdicts", True), bool):
        problems.append(f"report.verdicts: {report['verdicts']!r} is not true or false")
    rule = report.get("under_trained", {})
    if not isinstance(rule, Mapping):
        return [*problems, "report.under_trained: expected a mapping with keys checks, fg_ari, "
                           "mse_relative"]
    allowed = REPORT_DEFAULTS["under_trained"]
    problems += [f"report.under_trained.{k}: unknown key (allowed: {', '.join(allowed)})"
                 for k in rule if k not in allowed]
    checks = rule.get("checks", 1)
    if isinstance(checks, bool) or not isinstance(checks, int) or checks < 1:
        problems.append(f"report.under_trained.checks: {checks!r} is not an integer >= 1")
    for key in ("fg_ari", "mse_relative"):
        value = rule.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            problems.append(f"report.under_trained.{key}: {value!r} is not a number >= 0")
    return problems


def still_moving(curves: pd.DataFrame, rule: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(dataset, condition) -> why it may be under-trained, for each condition of ``curves``
    (:func:`analysis.curves.median_curves`, up to the claims) whose median FG-ARI changed by more
    than ``rule["fg_ari"]``, or median monitored MSE by more than ``rule["mse_relative"]`` of its
    earlier value, between the last check and the check ``rule["checks"]`` before it; also when it
    has too few checks to tell."""
    moving = {}
    checks = int(rule["checks"])
    for (dataset, condition), curve in curves.groupby(["dataset", "condition"], sort=False):
        curve = curve.sort_values("step")
        if len(curve) <= checks:
            moving[(dataset, condition)] = (f"{condition}: {len(curve)} check(s), too few to "
                                            f"tell over {checks}")
            continue
        last, before = curve.iloc[-1], curve.iloc[-1 - checks]
        span = f"steps {int(before['step']):,}-{int(last['step']):,}"
        reasons = []
        fg = float(last["fg_ari_median"] - before["fg_ari_median"])
        if np.isfinite(fg) and abs(fg) > rule["fg_ari"]:
            reasons.append(f"FG-ARI {fg:+.3f}")
        if before["mse_median"] > 0 and np.isfinite(last["mse_median"]):
            relative = float(last["mse_median"] / before["mse_median"] - 1)
            if abs(relative) > rule["mse_relative"]:
                reasons.append(f"MSE {relative:+.0%}")
        if reasons:
            moving[(dataset, condition)] = f"{condition}: {', '.join(reasons)} over {span}"
    return moving


def chance_bounds(results: pd.DataFrame, margin: float) -> dict[str, float]:
    """dataset -> the FG-ARI at or below which a condition has not segmented: the median FG-ARI
    of the trivial segmentation (every foreground pixel in one segment; ``fg_ari_trivial``) over
    the dataset's ok runs, plus ``margin``. A dataset without a finite ``fg_ari_trivial`` has no
    bound."""
    if "fg_ari_trivial" not in results.columns:
        return {}
    bounds = {}
    for dataset, rows in results[results["status"] == "ok"].groupby("dataset", sort=False):
        trivial = pd.to_numeric(rows["fg_ari_trivial"], errors="coerce").dropna()
        if not trivial.empty:
            bounds[dataset] = float(np.median(trivial)) + margin
    return bounds


def at_chance(summary: pd.DataFrame, bounds: Mapping[str, float], margin: float,
              metric: str = "fg_ari") -> dict[tuple[str, str], str]:
    """(dataset, condition) -> why, for each condition that has not segmented: its median FG-ARI
    is at most its dataset's bound (:func:`chance_bounds` with ``margin``). A dataset without a
    bound has no condition at chance."""
    if metric != "fg_ari":
        return {}
    found = {}
    for _, r in summary[summary["dataset"].isin(bounds)].iterrows():
        median, bound = r[f"{metric}_median"], bounds[r["dataset"]]
        if np.isfinite(median) and median <= bound:
            found[(r["dataset"], r["condition"])] = (
                f"{r['condition']} FG-ARI {format_number(median)} <= trivial "
                f"{format_number(bound - margin)} + margin {margin:g}")
    return found


def unlike_the_paper(chance: Mapping[tuple[str, str], str], paper_medians: Mapping[str, Any],
                     bounds: Mapping[str, float]) -> dict[tuple[str, str], str]:
    """(dataset, condition) -> note, for each condition at chance here (``chance``,
    :func:`at_chance`) whose paper median is above the same bound (``bounds``): the paper's runs
    segmented, ours have not started to, so a verdict that involves it may only mean a later
    start."""
    found = {}
    for dataset, condition in chance:
        paper = (paper_medians.get(dataset) or {}).get(condition)
        if paper is not None and paper > bounds[dataset]:
            found[(dataset, condition)] = f"{condition} (paper {format_number(paper, 2)})"
    return found


def findings_table(
    spec: Mapping[str, Any],
    tests: pd.DataFrame,
    summary: pd.DataFrame,
    stop: pd.DataFrame,
    results: pd.DataFrame,
    metric: str = "fg_ari",
    curves: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per claim in ``spec["paper"]``: medians (per dataset), each declared comparison
    with a paper p-value, and Table 1 (``paper.stop_effect``); empty without a paper block.

    ``curves``: the median learning curves up to the claims (:mod:`analysis.curves`), for the
    caveat; without them the caveat says that the training length was not checked.
    """
    paper = spec.get("paper") or {}
    rules = report_rules(spec)
    medians = paper.get("medians") or {}
    margin = float(rules["chance_margin"])
    bounds = chance_bounds(results, margin)
    chance = at_chance(summary, bounds, margin, metric)
    behind = unlike_the_paper(chance, medians, bounds)
    rows = []
    for dataset, values in medians.items():
        rows.append(_median_row(dataset, values, summary, metric, chance))
    for _, family in tests.groupby(["dataset", "test"], sort=False):
        if family["paper_p"].notna().any():
            rows += _test_rows(family, medians.get(family["dataset"].iloc[0], {}), results,
                               chance, summary)
    for dataset, values in (paper.get("stop_effect") or {}).items():
        rows.append(_stop_row(dataset, values, stop, metric))
    moving = None if curves is None else still_moving(curves, rules["under_trained"])
    for row in rows:
        row["caveat"] = _caveat(row, moving, behind, summary, results)
        if not rules["verdicts"]:
            row.update(verdict=VERDICTS[3], why="this profile is too small for any verdict: its "
                                                "numbers mean nothing (report.verdicts: false)")
    return pd.DataFrame(rows, columns=COLUMNS)


def incomplete(results: pd.DataFrame, dataset: str, conditions: list[str]) -> str:
    """``incomplete (runs finished): C k of n, ...`` for each condition of ``dataset`` with runs
    of the design (every row but ``not selected``) that are not ``ok``; "" when all finished."""
    if "status" not in results.columns:
        return ""
    rows = results[(results["dataset"] == dataset) & (results["status"] != "not selected")]
    parts = []
    for condition in conditions:
        status = rows.loc[rows["condition"].astype(str) == str(condition), "status"]
        done = int((status == "ok").sum())
        if done < len(status):
            parts.append(f"{condition} {done} of {len(status)}")
    return "incomplete (runs finished): " + ", ".join(parts) if parts else ""


def _caveat(row: Mapping[str, Any], moving: Mapping[tuple[str, str], str] | None,
            behind: Mapping[tuple[str, str], str], summary: pd.DataFrame,
            results: pd.DataFrame) -> str:
    """The conditions of ``row["_conditions"]`` (default: all of its dataset) with unfinished
    runs (:func:`incomplete`), then those still moving (``may be under-trained: ...``), then
    those at chance where the paper's segmented (``not segmented here, unlike the paper: ...``,
    :func:`unlike_the_paper`)."""
    conditions = row.pop("_conditions", None)
    if conditions is None:
        conditions = summary.loc[summary["dataset"] == row["dataset"], "condition"].tolist()
    notes = [incomplete(results, row["dataset"], conditions)]
    if moving is None:
        notes.append("no learning curves: training length not checked")
    else:
        reasons = [moving[(row["dataset"], c)] for c in conditions
                   if (row["dataset"], c) in moving]
        notes.append("may be under-trained: " + "; ".join(reasons) if reasons else "")
    late = [behind[(row["dataset"], c)] for c in conditions if (row["dataset"], c) in behind]
    notes.append("not segmented here, unlike the paper: " + ", ".join(late) if late else "")
    return "; ".join(note for note in notes if note)


def _median_row(dataset: str, paper: Mapping[str, float], summary: pd.DataFrame,
                metric: str, chance: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    ours = summary[summary["dataset"] == dataset].set_index("condition")[f"{metric}_median"]
    conditions = [c for c in paper if c in ours.index]
    row = {"claim": f"{metric} medians of {', '.join(paper)}", "dataset": dataset,
           "paper": ", ".join(format_number(paper[c], 2) for c in paper),
           "ours": ", ".join(format_number(ours.get(c, np.nan)) for c in paper),
           "_conditions": list(paper)}
    if any(np.isnan(ours[c]) for c in conditions) or len(conditions) < len(paper):
        return {**row, "verdict": VERDICTS[3], "why": "a condition has no ok runs"}
    both_chance = [c for c in conditions if (dataset, c) in chance]
    claims = [(a, b) for i, a in enumerate(conditions) for b in conditions[i + 1:]
              if abs(paper[a] - paper[b]) >= MEDIAN_GAP]
    testable = [(a, b) for a, b in claims if not (a in both_chance and b in both_chance)]
    if claims and not testable or not claims and len(both_chance) == len(conditions):
        return {**row, "verdict": VERDICTS[3],
                "why": "not segmented: " + "; ".join(chance[(dataset, c)] for c in both_chance)}
    if not claims:  # the paper's medians are about equal: so should ours be
        spread = float(ours[conditions].max() - ours[conditions].min())
        verdict = VERDICTS[0] if spread < MEDIAN_GAP else VERDICTS[2]
        return {**row, "verdict": verdict,
                "why": f"paper medians all within {MEDIAN_GAP}; ours span "
                       f"{format_number(spread)}"}
    tied = [f"{a} = {b}" for a, b in testable if ours[a] == ours[b]]
    flipped = [f"{a} {'>' if ours[a] > ours[b] else '<'} {b}" for a, b in testable
               if ours[a] != ours[b] and (ours[a] > ours[b]) != (paper[a] > paper[b])]
    if tied or flipped:
        return {**row, "verdict": VERDICTS[2],
                "why": "; ".join([*(f"tied: ours {t}" for t in tied),
                                  *(f"order differs: ours {f}" for f in flipped)])}
    skipped = len(claims) - len(testable)
    return {**row, "verdict": VERDICTS[0],
            "why": f"same strict order of the {len(testable)} pair(s) whose paper medians differ "
                   f"by >= {MEDIAN_GAP} (levels are not compared)"
                   + (f"; {skipped} pair(s) of unsegmented conditions left out" if skipped
                      else "")}


def _test_rows(family: pd.DataFrame, medians: Mapping[str, float], results: pd.DataFrame,
               chance: Mapping[tuple[str, str], str],
               summary: pd.DataFrame) -> list[dict[str, Any]]:
    correction = family["correction"].iloc[0]
    paper_adjusted = adjust(family["paper_p"].to_numpy(dtype=float), correction)
    rows = []
    for (_, r), paper_p in zip(family.iterrows(), paper_adjusted, strict=True):
        alpha, m = float(r["alpha"]), int(r["m"]) if not np.isnan(r["m"]) else 1
        paper_sign = _paper_sign(r, medians, results)
        paper_significant = bool(paper_p <= alpha)
        claim = (r["comparison"] if r["comparison"].startswith(f"{r['test']}:")
                 else f"{r['test']}: {r['comparison']}")
        sides = _sides(r) if r["kind"] == "wilcoxon" else None
        involved = list(sides) if sides else summary.loc[
            summary["dataset"] == r["dataset"], "condition"].tolist()
        row = {"claim": claim, "dataset": r["dataset"], "_conditions": involved,
               "paper": _paper_text(r["paper_p"], paper_p, correction, paper_sign, r)}
        if r["note"] or np.isnan(r["p_value"]):
            rows.append({**row, "ours": "not computed", "verdict": VERDICTS[3],
                         "why": r["note"] or "no p-value"})
            continue
        unsegmented = [chance[(r["dataset"], c)] for c in involved if (r["dataset"], c) in chance]
        if involved and len(unsegmented) == len(involved):
            rows.append({**row, "ours": f"p = {format_p(r['p_value'])}, n = {int(r['n'])}",
                         "verdict": VERDICTS[3],
                         "why": "not segmented: " + "; ".join(unsegmented)})
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
    if correction != "none" and row["m"] > 1:  # a printed 0 stays 0 after any correction
        shown = "0" if adjusted == 0 else format_p(adjusted)
        text += f" ({correction} at m = {int(row['m'])}: {shown})"
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
