"""Render tables as Markdown and LaTeX (booktabs), and format the summary and test tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analysis.formatting import format_number, format_p, format_paper_p

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of the frame's string values."""

    def cell(value: Any) -> str:
        return str(value).replace("|", r"\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines) + "\n"


def latex_escape(text: Any) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


#: A table with more columns than this is scaled to the text width (``\resizebox``, graphicx).
LATEX_FIT_COLUMNS = 6


def latex_table(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs ``table`` environment of the frame's string values (needs ``booktabs``); one
    with more than :data:`LATEX_FIT_COLUMNS` columns is scaled to the line width (needs
    ``graphicx``), so that it fits a page."""
    head = " & ".join(latex_escape(c) for c in table.columns) + r" \\"
    body = [" & ".join(latex_escape(v) for v in row) + r" \\" for row in table.itertuples(False)]
    fit = len(table.columns) > LATEX_FIT_COLUMNS
    return "\n".join(
        [
            r"\begin{table}[ht]",
            r"\centering",
            *([r"\resizebox{\linewidth}{!}{%"] if fit else []),
            r"\begin{tabular}{" + "l" * len(table.columns) + "}",
            r"\toprule",
            head,
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}" + ("}" if fit else ""),
            rf"\caption{{{latex_escape(caption)}}}",
            rf"\label{{{label}}}",
            r"\end{table}",
            "",
        ]
    )


def summary_display(
    summary: pd.DataFrame,
    metrics: Sequence[str],
    paper_medians: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """Printable summary: n (ok runs), per metric ``median [q25, q75]`` and mean, and the paper's
    FG-ARI median alongside when ``paper_medians`` is given."""
    rows = []
    for record in summary.to_dict("records"):
        row = {"dataset": record["dataset"], "condition": record["condition"]}
        row["n"] = record[f"{metrics[0]}_n"]
        for metric in metrics:
            row[f"{metric} median [IQR]"] = (
                f"{format_number(record[f'{metric}_median'])} "
                f"[{format_number(record[f'{metric}_q25'])}, "
                f"{format_number(record[f'{metric}_q75'])}]"
            )
            row[f"{metric} mean"] = format_number(record[f"{metric}_mean"])
        if paper_medians:
            paper = (paper_medians.get(record["dataset"]) or {}).get(record["condition"])
            row["paper median"] = format_number(paper) if paper is not None else "-"
        rows.append(row)
    return pd.DataFrame(rows)


def tests_display(tests: pd.DataFrame, with_paper: bool) -> pd.DataFrame:
    """Printable test table: statistic and z, blocks, p, adjusted p with rule and m, decision,
    direction and effect size, paper p. A comparison not computed says so (reason below it)."""
    rows = []
    for r in tests.to_dict("records"):
        skipped = bool(r["note"])
        row = {
            "dataset": r["dataset"],
            "test": r["test"],
            "comparison": r["comparison"],
            "statistic": "not computed" if skipped else _statistic(r),
            "n": _n(r),
            "p": "n/a" if skipped else format_p(r["p_value"]),
            "p adj.": f"{'n/a' if skipped else format_p(r['p_adjusted'])} "
            f"({r['correction']}, m={r['m']})",
            "reject": "-" if skipped else _decision(r),
            "direction, effect size": "-" if skipped else _effect(r),
        }
        if with_paper:
            row["paper p"] = format_paper_p(r["paper_p"])
        rows.append(row)
    columns = ["dataset", "test", "comparison", "statistic", "n", "p", "p adj.", "reject"]
    columns += ["direction, effect size", "paper p"] if with_paper else ["direction, effect size"]
    return pd.DataFrame(rows, columns=columns)


def posthoc_display(posthoc: pd.DataFrame) -> pd.DataFrame:
    """Printable post-hoc table: mean ranks, Nemenyi p against CD, Conover p with Holm."""
    rows = [
        {
            "dataset": r["dataset"],
            "test": r["test"],
            "pair": f"{r['first']} vs {r['second']}",
            "mean ranks": f"{r['mean_rank_first']:.3g} vs {r['mean_rank_second']:.3g}",
            "Nemenyi p": format_p(r["nemenyi_p"]),
            "CD": format_number(r["cd"]),
            "Conover p": format_p(r["conover_p"]),
            "Conover p adj.": f"{format_p(r['conover_p_holm'])} (holm, m={r['m']})",
            "different (Nemenyi / Conover)": f"{_yes(r['nemenyi_reject'])} / "
            f"{_yes(r['conover_reject'])} (alpha {r['alpha']:g})",
        }
        for r in posthoc.to_dict("records")
    ]
    return pd.DataFrame(rows)


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _n(r: Mapping[str, Any]) -> str:
    if r["kind"] == "wilcoxon" and not r["note"]:
        return f"{r['n_blocks']:g} pairs ({r['n_zero']:g} zero, n = {r['n']:g} ranked)"
    return f"{r['n_blocks']:g} blocks"


def _statistic(r: Mapping[str, Any]) -> str:
    if r["kind"] == "wilcoxon":
        text = f"W = {format_number(r['statistic'])}"
    else:
        text = f"chi2({r['df']:g}) = {format_number(r['statistic'])}"
    if pd.notna(r["z"]):
        text += f"; z = {format_number(r['z'], 3)}"
    return text


def _decision(r: Mapping[str, Any]) -> str:
    return f"{'yes' if r['reject'] else 'no'} (alpha {r['alpha']:g})"


def _effect(r: Mapping[str, Any]) -> str:
    if r["kind"] != "wilcoxon":
        head = f"{r['direction']}; " if r["direction"] else ""
        return f"{head}mean ranks {r['mean_ranks']}; Kendall's W = {format_number(r['kendall_w'])}"
    return (
        f"{r['direction']}; HL = {format_number(r['hl_shift'])} "
        f"[{format_number(r['hl_ci_low'])}, {format_number(r['hl_ci_high'])}]; "
        f"r = {format_number(r['rank_biserial'])}"
    )
