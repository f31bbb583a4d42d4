"""The spec's tests: section: validation messages and the declared tests run on the fixtures."""

import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from analysis import run_tests, validate_tests
from analysis.results import load_results, parameter_columns

FIXTURES = Path(__file__).parent / "fixtures"
CONDITIONS = ["NLL+M", "IR+M", "MW+M"]
DATASETS = ["multi_dsprites", "objects_room"]


def _spec(name):
    return yaml.safe_load((FIXTURES / f"{name}_spec.yaml").read_text())


@functools.cache
def _run(name):
    spec = _spec(name)
    df = load_results(FIXTURES / f"{name}_results.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = run_tests(
            spec["tests"], df, DATASETS, parameter_columns(spec["conditions"]), spec["paper"]
        )
    return df, tests


@pytest.mark.parametrize("name", ["section3_1", "section3_3"])
def test_fixture_specs_are_valid(name):
    spec = _spec(name)
    assert validate_tests(spec["tests"], spec["paper"], list(spec["conditions"]), DATASETS) == []


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        ([{"name": "a", "kind": "anova"}], "tests[0].kind: 'anova' is not one of friedman, "),
        (
            [{"name": "a", "kind": "wilcoxon", "pairs": [["NLL+M", "IR"]]}],
            "tests[0].pairs[0][1]: 'IR' is not a condition (allowed: NLL+M, IR+M, MW+M)",
        ),
        (
            [{"name": "a", "kind": "wilcoxon", "pairs": [["IR+M", "IR+M"]]}],
            "tests[0].pairs[0]: compares 'IR+M' with itself",
        ),
        (
            [
                {
                    "name": "a",
                    "kind": "friedman_factor",
                    "conditions": ["NLL+M", "IR+M"],
                    "factor": "beta",
                }
            ],
            "tests[0].blocking: required for kind friedman_factor (pooled, marginal, stratified)",
        ),
        (
            [{"name": "a", "kind": "friedman", "conditions": ["NLL+M"]}],
            "tests[0].conditions: required, a list of >= 2 conditions",
        ),
        (
            [{"name": "a", "kind": "wilcoxon", "pairs": [["NLL+M", "IR+M"]], "zero_method": "x"}],
            "tests[0].zero_method: 'x' is not one of wilcox, pratt, zsplit",
        ),
        (
            [{"name": "a", "kind": "wilcoxon", "pairs": [["NLL+M", "IR+M"]], "alpha": 5}],
            "tests[0].alpha: 5 must be a number in (0, 1)",
        ),
        (
            [{"name": "a", "kind": "friedman", "conditions": CONDITIONS, "pairs": []}],
            "tests[0].pairs: unknown key for kind friedman",
        ),
        (
            [
                {"name": "a", "kind": "friedman", "conditions": CONDITIONS},
                {"name": "a", "kind": "friedman", "conditions": CONDITIONS},
            ],
            "tests[1].name: 'a' is used by an earlier test",
        ),
        (
            [{"name": "a", "kind": "friedman", "conditions": CONDITIONS, "metric": "acc"}],
            "tests[0].metric: 'acc'",
        ),
    ],
)
def test_validation_messages_name_the_key_path(tests, message):
    problems = validate_tests(tests, None, CONDITIONS, DATASETS)
    assert any(message in p for p in problems), problems


def test_paper_section_is_checked_against_tests_conditions_and_datasets():
    tests = [{"name": "nll_vs_ir", "kind": "wilcoxon", "pairs": [["NLL+M", "IR+M"]]}]
    paper = {
        "medians": {"multi_dsprites": {"NLL": 0.69}, "clevr": {"IR+M": 0.1}},
        "p_values": {"objects_room": {"nll_vs_ir": {"IR+M vs NLL+M": 0.0}, "beta": 0.3}},
        "notes": "x",
    }
    problems = validate_tests(tests, paper, CONDITIONS, DATASETS)
    expected = [
        "paper.notes: unknown key",
        "paper.medians.multi_dsprites.NLL: not a condition",
        "paper.medians.clevr: 'clevr' is not a dataset",
        "paper.p_values.objects_room.nll_vs_ir.IR+M vs NLL+M: not a pair of this test "
        "(allowed: NLL+M vs IR+M)",
        "paper.p_values.objects_room.beta: not a test name",
    ]
    for message in expected:
        assert any(message in p for p in problems), (message, problems)
    assert len(problems) == len(expected)


def test_wilcoxon_rows_match_scipy_and_holm_over_three_pairs():
    df, tests = _run("section3_3")
    rows = tests[tests["dataset"] == "objects_room"].set_index("comparison")
    assert list(rows.index) == ["MSE+M vs MW+M", "MW+M vs NLL+M", "NLL+M vs MSE+M"]
    ok = df[(df["dataset"] == "objects_room") & (df["status"] == "ok")]
    wide = ok.pivot(index="seed", columns="condition", values="fg_ari")  # seed 20: NLL+M missing
    raw = []
    for (first, second), row in zip(
        [("MSE+M", "MW+M"), ("MW+M", "NLL+M"), ("NLL+M", "MSE+M")], rows.itertuples(), strict=True
    ):
        pair = wide[[first, second]].dropna()
        # 3-decimal values as exact integers (the test is scale-free): x - y has no float noise
        d = np.round(pair[first] * 1000) - np.round(pair[second] * 1000)
        ref = stats.wilcoxon(d, method="asymptotic")  # auto: ties and n > 13
        assert row.statistic == ref.statistic and row.n == len(pair) == (
            19 if "NLL+M" in row.Index else 20
        )
        assert row.p_value == pytest.approx(ref.pvalue, rel=1e-12)
        raw.append(ref.pvalue)
    # Holm by hand: sort, multiply by 3, 2, 1, running maximum
    order = np.argsort(raw)
    expected = np.maximum.accumulate(np.minimum(1, np.array(raw)[order] * [3, 2, 1]))
    np.testing.assert_allclose(rows["p_adjusted"].to_numpy()[order], expected, rtol=1e-12)
    assert set(rows["m"]) == {3} and rows["reject"].tolist() == list(rows["p_adjusted"] <= 0.05)
    assert rows.loc["MW+M vs NLL+M", "paper_p"] == pytest.approx(6.7e-16)


def test_friedman_omnibus_matches_scipy_on_complete_seeds():
    df, tests = _run("section3_1")
    row = tests[(tests["dataset"] == "objects_room") & (tests["test"] == "omnibus")].iloc[0]
    ok = df[(df["dataset"] == "objects_room") & (df["status"] == "ok")]
    wide = ok.pivot(index="seed", columns="condition", values="fg_ari").dropna()
    ref = stats.friedmanchisquare(*(wide[c] for c in ["11", "01", "10", "00"]))
    assert row["n"] == 19 and row["n_dropped"] == 1
    assert row["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert row["correction"] == "none" and row["p_adjusted"] == row["p_value"]


def test_factor_rows_and_paper_p_values():
    _, tests = _run("section3_1")
    md = tests[tests["dataset"] == "multi_dsprites"].set_index("test")
    assert md.loc["beta", "comparison"] == "beta: 0.5 vs 0 (blocks: seed; mean over gamma)"
    assert md.loc["beta", "paper_p"] == 0.32 and md.loc["beta", "df"] == 1
    assert md.loc["beta_pooled", "n"] == 40
    strata = md.loc["gamma_stratified"]
    assert list(strata["comparison"]) == [
        "gamma: 0.25 vs 0 at beta=0.5",
        "gamma: 0.25 vs 0 at beta=0",
    ]
    assert set(strata["m"]) == {2}


def _tiny(values_a, values_b):
    seeds = range(1, len(values_a) + 1)
    rows = [
        {"dataset": "d", "condition": c, "seed": s, "status": "ok", "fg_ari": v}
        for c, values in (("A", values_a), ("B", values_b))
        for s, v in zip(seeds, values, strict=True)
    ]
    return load_results(pd.DataFrame(rows))


def test_too_few_blocks_reports_instead_of_a_number():
    df = _tiny([0.1, 0.2, 0.3], [0.2, 0.3, 0.5])
    test = {"name": "t", "kind": "wilcoxon", "pairs": [["A", "B"]]}
    [row] = run_tests([test], df, ["d"], []).to_dict("records")
    assert row["note"] == "too few blocks (n=3)"
    assert np.isnan(row["p_value"]) and row["reject"] is None and row["m"] == 0


def test_no_nonzero_difference_reports_too_few_blocks():
    df = _tiny([0.1, 0.2, 0.3, 0.4, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5])
    test = {"name": "t", "kind": "friedman", "conditions": ["A", "B"]}
    [row] = run_tests([test], df, ["d"], []).to_dict("records")
    assert row["note"] == "too few blocks (n=5; 0 non-zero differences)"
