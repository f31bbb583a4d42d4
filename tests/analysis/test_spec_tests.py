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
from analysis.spec_tests import analyse

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
        (
            [{"name": "a", "kind": "friedman", "conditions": CONDITIONS, "description": 5}],
            "tests[0].description: 5 must be text",
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
    rows = tests[(tests["dataset"] == "objects_room") & (tests["test"] == "pairs")]
    rows = rows.set_index("comparison")
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
    assert row["note"] == (
        "not computed (test t, dataset d, A vs B): too few complete blocks (n=3; 5 needed)"
    )
    assert np.isnan(row["p_value"]) and row["reject"] is None and row["m"] == 1


def test_no_nonzero_difference_reports_too_few_blocks():
    df = _tiny([0.1, 0.2, 0.3, 0.4, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5])
    test = {"name": "t", "kind": "friedman", "conditions": ["A", "B"]}
    [row] = run_tests([test], df, ["d"], []).to_dict("records")
    assert (
        row["note"] == "not computed (test t, dataset d, A, B): all 5 blocks tied (no difference)"
    )


def _frame(values: dict) -> pd.DataFrame:
    rows = [
        {"dataset": "d", "condition": c, "seed": s, "status": "ok", "fg_ari": v}
        for c, column in values.items()
        for s, v in enumerate(column, start=1)
    ]
    return load_results(pd.DataFrame(rows))


def test_an_uncomputable_pair_stays_in_the_holm_family():
    # A - B: 10 positive differences -> exact p = 2 / 2^10; A - C: 9 positive, the smallest
    # negative (W- = 1) -> p = 2 * 2 / 2^10; D has no runs. Holm at the declared m = 3:
    # 3 * 2/1024 = 6/1024, 2 * 4/1024 = 8/1024 (at m = 2 both would be 4/1024).
    a = np.arange(1, 11) / 10
    c = a - np.arange(1, 11) / 100
    c[0] = a[0] + 0.001
    df = _frame({"A": a, "B": a - 0.05 - np.arange(10) / 1000, "C": c})
    test = {
        "name": "t", "kind": "wilcoxon", "pairs": [["A", "B"], ["A", "C"], ["A", "D"]],
        "correction": "holm",
    }  # fmt: skip
    rows = run_tests([test], df, ["d"], []).to_dict("records")
    assert [r["m"] for r in rows] == [3, 3, 3]
    assert rows[0]["p_value"] == pytest.approx(2 / 1024) and rows[1]["p_value"] == pytest.approx(
        4 / 1024
    )
    assert rows[0]["p_adjusted"] == pytest.approx(6 / 1024)
    assert rows[1]["p_adjusted"] == pytest.approx(8 / 1024)
    assert np.isnan(rows[2]["p_adjusted"]) and rows[2]["reject"] is None
    assert rows[2]["note"] == (
        "not computed (test t, dataset d, A vs D): condition 'D' has no runs for dataset d"
    )
    assert rows[0]["rule"].startswith("holm step-down (m=3)")
    assert rows[0]["direction"] == "A > B" and rows[0]["method"] == "exact"


def test_missing_condition_in_one_dataset_marks_the_factor_test_only_there():
    df, _ = _run("section3_1")
    df = df[~((df["dataset"] == "objects_room") & (df["condition"] == "10"))]
    spec = _spec("section3_1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = run_tests(spec["tests"], df, DATASETS, parameter_columns(spec["conditions"]))
    room = tests[tests["dataset"] == "objects_room"]
    assert (room["note"].str.contains("condition '10' has no runs for dataset objects_room")).all()
    assert "not computed (test beta, dataset objects_room, beta (marginal))" in room["note"].iloc[1]
    md = tests[tests["dataset"] == "multi_dsprites"]
    assert (md["note"] == "").all() and md["p_value"].notna().all()


def test_a_metric_absent_from_the_results_is_a_note():
    df = _tiny([0.1, 0.2, 0.3, 0.4, 0.5], [0.2, 0.3, 0.4, 0.5, 0.7])
    test = {"name": "t", "kind": "wilcoxon", "pairs": [["A", "B"]], "metric": "ari"}
    [row] = run_tests([test], df, ["d"], []).to_dict("records")
    assert row["note"].endswith("metric 'ari' is not a column of the results")


def test_two_level_factor_rows_carry_direction_mean_ranks_and_z():
    _, tests = _run("section3_1")
    row = tests[(tests["dataset"] == "objects_room") & (tests["test"] == "gamma")].iloc[0]
    ranks = dict(part.split(": ") for part in row["mean_ranks"].split("; "))
    assert set(ranks) == {"gamma=0.25", "gamma=0"}
    high = float(ranks["gamma=0.25"]) > float(ranks["gamma=0"])
    assert row["direction"] == ("gamma=0.25 > gamma=0" if high else "gamma=0.25 < gamma=0")
    assert row["z"] ** 2 == pytest.approx(row["statistic"]) and (row["z"] > 0) == high
    assert "blocks = seeds (independent runs)" in row["assumptions"]


def test_posthoc_after_the_k4_omnibus():
    spec = _spec("section3_1")
    df = load_results(FIXTURES / "section3_1_results.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyse(spec["tests"], df, DATASETS, parameter_columns(spec["conditions"]))
    room = result.posthoc[result.posthoc["dataset"] == "objects_room"]
    assert list(zip(room["first"], room["second"], strict=True)) == [
        ("11", "01"), ("11", "10"), ("11", "00"), ("01", "10"), ("01", "00"), ("10", "00"),
    ]  # fmt: skip
    # 19 complete seeds: CD = q_0.05(4) sqrt(4 * 5 / (6 * 19)) with Demsar's q = 2.569
    assert room["cd"].iloc[0] == pytest.approx(2.569 * np.sqrt(20 / 114), abs=1e-3)
    assert (room["m"] == 6).all()
    ok = df[(df["dataset"] == "objects_room") & (df["status"] == "ok")]
    wide = ok.pivot(index="seed", columns="condition", values="fg_ari").dropna()
    means = wide[["11", "01", "10", "00"]].rank(axis=1).mean()
    assert room["mean_rank_first"].iloc[0] == pytest.approx(means["11"])
    assert room["mean_rank_second"].iloc[-1] == pytest.approx(means["00"])
