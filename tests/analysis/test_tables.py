"""Markdown and LaTeX rendering."""

import pandas as pd

from analysis.tables import latex_escape, latex_table, markdown_table


def test_markdown_table_layout_and_pipe_escaping():
    text = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [1]}))
    assert text == "| a | b |\n|---|---|\n| x\\|y | 1 |\n"


def test_latex_escapes_special_characters():
    assert latex_escape("multi_dsprites 5% < 1e-300 & #") == (
        r"multi\_dsprites 5\% \textless{} 1e-300 \& \#"
    )


def test_latex_table_is_a_booktabs_tabular():
    text = latex_table(pd.DataFrame({"p_value": ["0.32"]}), "cap_1", "tab:x")
    assert r"\begin{tabular}{l}" in text and r"\toprule" in text and r"\bottomrule" in text
    assert r"p\_value \\" in text and r"0.32 \\" in text
    assert r"\caption{cap\_1}" in text and r"\label{tab:x}" in text


def test_a_wide_latex_table_is_scaled_to_the_line_width():
    wide = latex_table(pd.DataFrame([list("abcdefghij")], columns=list("ABCDEFGHIJ")), "c", "t")
    lines = wide.splitlines()
    start = lines.index(r"\resizebox{\linewidth}{!}{%")
    assert lines[start + 1] == r"\begin{tabular}{llllllllll}"
    assert r"\end{tabular}}" in lines  # the resizebox closes right after the tabular
    narrow = latex_table(pd.DataFrame([list("abc")], columns=list("ABC")), "c", "t")
    assert "resizebox" not in narrow and r"\end{tabular}" in narrow.splitlines()
