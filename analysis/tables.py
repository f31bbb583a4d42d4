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


def latex_table(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs ``table`` environment of the frame's string values."""
    head = " & ".join(latex_escape(c) for c in table.columns) + r" \\"
    body = [" & ".join(latex_escape(v) for v in row) + r" \\" for row in table.itertuples(False)]
    return "\n".join(
        [
            r"\begin{table}[ht]",
            r"\centering",
            r"\begin{tabular}{" + "l" * len(table.columns) + "}",
            r"\toprule",
            head,
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
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
    """Printable test table: statistic, n, p, adjusted p, decision, effect size, paper p."""
    rows = []
    for r in tests.to_dict("records"):
        too_few = bool(r["note"])
        row = {
            "dataset": r["dataset"],
            "test": r["test"],
            "comparison": r["comparison"],
            "statistic": _statistic(r) if not too_few else r["note"],
            "n": r["n"],
            "p": format_p(r["p_value"]) if not too_few else r["note"],
            "p adj.": f"{format_p(r['p_adjusted'])} ({r['correction']})" if not too_few else "-",
            "reject": _decision(r) if not too_few else "-",
            "effect size": _effect(r) if not too_few else "-",
        }
        if with_paper:
            row["paper p"] = format_paper_p(r["paper_p"])
        rows.append(row)
    columns = ["dataset", "test", "comparison", "statistic", "n", "p", "p adj.", "reject"]
    columns += ["effect size", "paper p"] if with_paper else ["effect size"]
    return pd.DataFrame(rows, columns=columns)


def _statistic(r: Mapping[str, Any]) -> str:
    if r["kind"] == "wilcoxon":
        return f"W = {format_number(r['statistic'], 4)}"
    return f"chi2({r['df']:g}) = {format_number(r['statistic'], 4)}"


def _decision(r: Mapping[str, Any]) -> str:
    return f"{'yes' if r['reject'] else 'no'} (alpha {r['alpha']:g})"


def _effect(r: Mapping[str, Any]) -> str:
    if r["kind"] != "wilcoxon":
        return f"Kendall's W = {format_number(r['kendall_w'])}"
    return (
        f"r = {format_number(r['rank_biserial'])}; HL = {format_number(r['hl_shift'])} "
        f"[{format_number(r['hl_ci_low'])}, {format_number(r['hl_ci_high'])}]"
    )
