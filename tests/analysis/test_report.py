"""write_report and the CLI on the made-up fixtures: every file, with the expected rows."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from analysis import write_report
from analysis.figures import median_seed
from analysis.results import load_results

FIXTURES = Path(__file__).parent / "fixtures"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TABLE_FILES = ("report.md", "summary.csv", "tests.csv", "summary.tex", "tests.tex")
BOXPLOTS = ("boxplot_fg_ari.png", "boxplot_fg_ari_multi.png", "boxplot_ari.png")


def _spec(name):
    return yaml.safe_load((FIXTURES / f"{name}_spec.yaml").read_text())


def _report(name, out, results=None, results_dir=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = FIXTURES / f"{name}_results.csv" if results is None else results
        return write_report(_spec(name), results, out, results_dir)


def test_section3_1_report(tmp_path):
    written = _report("section3_1", tmp_path)
    for name in TABLE_FILES + BOXPLOTS:
        assert (tmp_path / name).is_file(), name
    for name in BOXPLOTS:
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    assert written["report"] == tmp_path / "report.md"

    summary = pd.read_csv(tmp_path / "summary.csv", dtype={"condition": str})
    assert list(zip(summary["dataset"], summary["condition"], strict=True)) == [
        (d, c) for d in ("multi_dsprites", "objects_room") for c in ("11", "01", "10", "00")
    ]
    assert summary.set_index(["dataset", "condition"]).loc[("objects_room", "10"), "fg_ari_n"] == 19

    tests = pd.read_csv(tmp_path / "tests.csv")
    assert len(tests) == 12  # per dataset: omnibus, beta, gamma, beta_pooled, 2 gamma strata
    assert tests.groupby("dataset")["test"].apply(list).to_dict()["objects_room"] == [
        "omnibus", "beta", "gamma", "beta_pooled", "gamma_stratified", "gamma_stratified",
    ]  # fmt: skip
    # k = 2 factor tests are sign tests: p = chi2_1.sf((n+ - n-)^2 / (n+ + n-)) from the raw rows
    df = load_results(FIXTURES / "section3_1_results.csv")
    room = df[(df["dataset"] == "objects_room") & (df["status"] == "ok")]
    wide = room.pivot(index="seed", columns="condition", values="fg_ari")
    pooled = pd.concat([wide["11"] - wide["01"], wide["10"] - wide["00"]]).dropna()
    marginal = ((wide["11"] + wide["10"]) / 2 - (wide["01"] + wide["00"]) / 2).dropna()
    rows = tests[tests["dataset"] == "objects_room"].set_index("test")
    for name, d in (("beta_pooled", pooled), ("beta", marginal)):
        plus, minus = int((d > 1e-12).sum()), int((d < -1e-12).sum())
        expected = stats.chi2.sf((plus - minus) ** 2 / (plus + minus), 1)
        assert rows.loc[name, "p_value"] == pytest.approx(expected, rel=1e-9), name
        assert rows.loc[name, "n_blocks"] == len(d)
    posthoc = pd.read_csv(tmp_path / "posthoc.csv", dtype={"first": str, "second": str})
    assert len(posthoc) == 12 and set(posthoc["test"]) == {"omnibus"}
    for name in ("cd_omnibus_objects_room.png", "paired_beta_pooled.png", "paired_omnibus.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC, name

    report = (tmp_path / "report.md").read_text()
    findings = pd.read_csv(tmp_path / "findings.csv").set_index(["dataset", "claim"])
    # the fixture: gamma (marginal) rejects on objects_room as the paper's 1.7e-22 does
    assert findings.loc[("objects_room", "gamma: 0.25 vs 0 (blocks: seed; mean over beta)"),
                        "verdict"] == "reproduced"
    assert report.index("## Findings") < report.index("## What was run")
    for text in [
        "# Ablation of beta and gamma (section 3.1)",
        "profile `demo` (not the paper's settings)",
        # the fixture has no config.* columns: the header says what it cannot know
        "The runs' records hold no settings (`config.*` columns",
        "The profile's description (its author's intent): ",
        "20 made-up seeds instead of 100",
        "| objects_room | objects_room_generated |",
        "| objects_room | 10 | 19 | 1 | 0 | 20 |",
        "- failed: objects_room, condition 10, seed 7: NaN loss at step 120000",
        "- objects_room, condition '10', seed 7: run failed; dropped from omnibus, beta, gamma, "
        "beta_pooled, gamma_stratified",
        "| objects_room | beta | beta: 0.5 vs 0 (blocks: seed; mean over gamma) |",
        "Friedman about gamma, blocking stratified",
        "- `gamma_stratified` (objects_room): holm step-down (m=2)",
        "(holm, m=2)",
        "counted as independent: NOT valid if the factor's effect varies by seed",
        "## Post-hoc tests after Friedman (k >= 3)",
        "| objects_room | omnibus | 11 vs 10 |",
        "![cd_omnibus_objects_room](cd_omnibus_objects_room.png)",
        "![paired_beta](paired_beta.png)",
        "## Effect of the stopping rule (Table 1)",
        "| multi_dsprites | 11 | fg_ari | 2 |",
        "![boxplot_fg_ari](boxplot_fg_ari.png)",
        "attention_examples.npz absent, skipped.",
    ]:
        assert text in report, text
    assert r"objects\_room" in (tmp_path / "summary.tex").read_text()


def test_section3_3_report(tmp_path):
    _report("section3_3", tmp_path)
    tests = pd.read_csv(tmp_path / "tests.csv")
    assert list(tests["comparison"]) == ["MSE+M vs MW+M", "MW+M vs NLL+M", "NLL+M vs MSE+M"] * 4
    assert (
        list(tests["correction"])
        == ["holm"] * 3 + ["bonferroni"] * 3 + ["holm"] * 3 + ["bonferroni"] * 3
    )
    assert (tests["m"] == 3).all()
    # the exact p of 20 pairs of one sign survives the CSV round trip as a full float: 2 / 2^20
    assert tests.loc[0, "p_value"] == 2.0**-19
    report = (tmp_path / "report.md").read_text()
    for text in [
        "profile `paper` (the paper's settings).",
        "| objects_room | NLL+M | 19 | 0 | 1 | 20 |",
        "| multi_dsprites | pairs | MSE+M vs MW+M | W = 0 | 20 pairs (0 zero, n = 20 ranked) | "
        "1.91e-06 | 5.72e-06 (holm, m=3) |",
        "| MSE+M < MW+M; HL = ",
        "0 (as printed)",
        "6.7e-16",
        "-> exact (Wilcoxon's null distribution; no ties, no zeros); HL 95% CI: exact Walsh",
        "- `pairs_bonferroni` (multi_dsprites): bonferroni (m=3): p <= alpha/m = 0.05/3 = 0.0167 "
        "(adjusted p = min(1, 3 p) <= 0.05). Bonferroni at alpha/m = 0.05/3 is the paper's limit "
        '"0.05/3 = 0.016" (section 3.3)',
        "20 pairs, 0 zero differences (dropped before ranking",
        "![paired_pairs](paired_pairs.png)",
        "No Friedman comparison with k >= 3 was computed.",
        "No run was trained past the stopping rule",
    ]:
        assert text in report, text
    rows = [line.split(" | ") for line in report.splitlines() if " | pairs | " in line]
    assert len(rows) == 6
    assert all(cells[5] not in ("0", "0.000") for cells in rows)  # the p column
    tex = (tmp_path / "tests.tex").read_text()
    assert r"MSE+M vs MW+M & W = 0 & 20 pairs (0 zero, n = 20 ranked) & 1.91e-06" in tex


def _attention_arrays(n=2, k=5, size=16):
    rng = np.random.default_rng(0)
    masks = rng.dirichlet(np.ones(k), size=(n, size, size)).transpose(0, 3, 1, 2)
    components = rng.uniform(0, 1, (n, k, size, size, 3))
    return {
        "image": rng.uniform(0, 1, (n, size, size, 3)),
        "reconstruction": (masks[..., None] * components).sum(1),
        "masks": masks,
        "components": components,
        "labels": rng.integers(0, 4, (n, size, size)),
    }


def test_attention_mask_figure_for_the_median_run(tmp_path):
    df = load_results(FIXTURES / "section3_3_results.csv")
    seed = median_seed(df, "multi_dsprites", "MW+M")
    run_dir = tmp_path / "runs" / "multi_dsprites" / "MW+M" / f"seed_{seed:03d}"
    run_dir.mkdir(parents=True)
    np.savez(run_dir / "attention_examples.npz", **_attention_arrays())
    written = _report("section3_3", tmp_path / "out", results=df, results_dir=tmp_path)
    figure = tmp_path / "out" / "masks_multi_dsprites_MW+M.png"
    assert written["masks_multi_dsprites_MW+M"] == figure
    assert figure.read_bytes()[:8] == PNG_MAGIC
    report = (tmp_path / "out" / "report.md").read_text()
    assert "![multi_dsprites MW+M](masks_multi_dsprites_MW+M.png)" in report
    assert report.count("absent, skipped.") == 5


def test_invalid_tests_section_is_refused(tmp_path):
    spec = _spec("section3_3")
    spec["tests"][0]["pairs"][0][1] = "MW"
    with pytest.raises(ValueError, match=r"tests\[0\]\.pairs\[0\]\[1\]: 'MW' is not a condition"):
        write_report(spec, FIXTURES / "section3_3_results.csv", tmp_path)


def test_one_uncomputable_pair_of_three_keeps_m_3(tmp_path):
    # MW+M copied onto NLL+M for multi_dsprites: pair 2 has only zero differences, so it has no
    # p-value; pairs 1 and 3 are Holm-adjusted for the declared m = 3, by hand below.
    df = load_results(FIXTURES / "section3_3_results.csv")
    md = df["dataset"] == "multi_dsprites"
    mw = df[md & (df["condition"] == "MW+M")].set_index("seed")["fg_ari"]
    nll = md & (df["condition"] == "NLL+M")
    df.loc[nll, "fg_ari"] = df.loc[nll, "seed"].map(mw).to_numpy()
    _report("section3_3", tmp_path, results=df)
    tests = pd.read_csv(tmp_path / "tests.csv")
    holm = tests[(tests["dataset"] == "multi_dsprites") & (tests["test"] == "pairs")]
    assert list(holm["m"]) == [3, 3, 3] and np.isnan(holm["p_value"].iloc[1])
    wide = df[md].pivot(index="seed", columns="condition", values="fg_ari")
    raw = [
        stats.wilcoxon(wide[a] * 1000 - wide[b] * 1000, method="exact").pvalue
        for a, b in (("MSE+M", "MW+M"), ("NLL+M", "MSE+M"))
    ]  # 20 one-signed untied pairs: 2 / 2^20 each (scipy's lower tail is right here)
    low, high = sorted(raw)
    expected = [3 * low, max(3 * low, 2 * high)]
    got = sorted(holm["p_adjusted"].dropna())
    assert got == pytest.approx(expected, rel=1e-9)
    report = (tmp_path / "report.md").read_text()
    assert "| multi_dsprites | pairs | MW+M vs NLL+M | not computed |" in report
    assert "n/a (holm, m=3)" in report
    assert (
        "- not computed (test pairs, dataset multi_dsprites, MW+M vs NLL+M): all 20 blocks tied"
        in report
    )


def test_minimal_results_and_spec_without_tests(tmp_path):
    # only the required columns and fg_ari: no tests, no Table 1, no run directories
    df = pd.DataFrame(
        [
            {"dataset": "d", "condition": c, "seed": s, "status": "ok", "fg_ari": 0.1 * s}
            for c in ("A", "B")
            for s in range(1, 6)
        ]
    )
    spec = {"name": "mini", "conditions": {"A": {}, "B": {}}, "datasets": {"d": {}}}
    written = write_report(spec, df, tmp_path)
    assert set(written) == {
        "summary_csv", "tests_csv", "posthoc_csv", "summary_tex", "tests_tex", "findings_csv",
        "boxplot_fg_ari", "report",
    }  # fmt: skip
    report = (tmp_path / "report.md").read_text()
    assert "The spec declares no tests." in report
    assert "The spec has no `paper:` block, so there is nothing to compare." in report
    assert "No run was trained past the stopping rule" in report
    assert "- d / A (seed 3): no run directory known." in report
    assert "dashed line" not in report and "red diamonds" not in report
    assert pd.read_csv(tmp_path / "tests.csv").empty
    assert r"\begin{tabular}{lllllllll}" in (tmp_path / "tests.tex").read_text()


def test_a_table_from_two_machines_says_so(tmp_path):
    rows = [
        {"dataset": "d", "condition": c, "seed": s, "status": "ok", "fg_ari": 0.1 * s,
         "machine": "AMD EPYC" if s < 4 else "Intel Xeon", "threads": 1}
        for c in ("A", "B") for s in range(1, 6)
    ]  # fmt: skip
    spec = {"name": "mini", "conditions": {"A": {}, "B": {}}, "datasets": {"d": {}}}
    write_report(spec, pd.DataFrame(rows), tmp_path / "mixed")
    report = (tmp_path / "mixed" / "report.md").read_text()
    assert "**Mixed machines.** These runs were trained on 2 machine types" in report
    assert "AMD EPYC / 1: 6 runs" in report and "Intel Xeon / 1: 4 runs" in report
    same = [{**r, "machine": "AMD EPYC"} for r in rows]
    write_report(spec, pd.DataFrame(same), tmp_path / "same")
    assert "Mixed machines" not in (tmp_path / "same" / "report.md").read_text()


def test_the_header_prints_each_datasets_rate_schedule_and_check_interval(tmp_path):
    """The header's "What ran" row reads the schedule from the runs' config columns: a constant
    rate stays "adam (0.001)"; a warm-up and a decay are named; runs recorded before monetk 0.5
    (no such columns) print the rate alone."""
    def rows(dataset, **config):
        return [{"dataset": dataset, "condition": c, "seed": s, "status": "ok", "fg_ari": 0.1 * s,
                 "steps": 100, "config.optimizer": "adam", "config.learning_rate": 0.001,
                 **{f"config.{k}": v for k, v in config.items()}}
                for c in ("A", "B") for s in (1, 2)]

    df = pd.DataFrame(rows("flat", lr_decay="none", lr_final_ratio=0.0, warmup_steps=0,
                           check_every=50)
                      + rows("decayed", lr_decay="cosine", lr_final_ratio=0.1, warmup_steps=20,
                             check_every=50)
                      + rows("old"))
    spec = {"name": "mini", "conditions": {"A": {}, "B": {}},
            "datasets": {"flat": {}, "decayed": {}, "old": {}}}
    write_report(spec, df, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert ("| dataset | image | K | steps (max; reached) | checks every | batch | "
            "optimiser (lr) |") in report
    unknown = "not recorded | not recorded | not recorded; 100"
    assert f"| flat | {unknown} | 50 | not recorded | adam (0.001) |" in report
    assert (f"| decayed | {unknown} | 50 | not recorded | "
            "adam (0.001, 20 warm-up steps, cosine to x0.1) |") in report
    assert f"| old | {unknown} | not recorded | not recorded | adam (0.001) |" in report


def test_the_header_prints_whole_numbers_as_written_with_thousands_separators(tmp_path):
    """Settings and counts read back from results.csv print as a reader writes them: 10,000
    steps (an int column) and 1,000 checks (a float column with a gap) both with a separator,
    one thread as "1" (not "1.0"), and "1 run" beside "3 runs"."""
    df = pd.DataFrame([{"dataset": "d", "condition": "A", "seed": s, "status": "ok",
                        "fg_ari": 0.1 * s, "steps": 10000, "config.max_steps": 10000,
                        "config.check_every": 1000.0 if s < 4 else float("nan"),
                        "threads": 1.0, "monetk": "0.5.0" if s < 4 else "0.4.0"}
                       for s in (1, 2, 3, 4)])
    write_report({"name": "mini", "conditions": {"A": {}}, "datasets": {"d": {}}}, df, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "| 10,000; 10,000 | 1,000 |" in report
    assert "monetk 0.5.0 (3 runs), 0.4.0 (1 run)" in report
    assert "threads: 1;" in report


def test_the_header_names_each_schedule_where_a_datasets_conditions_differ(tmp_path):
    """Conditions of one dataset with different schedules (a lever study) print one entry per
    schedule, not each setting's values joined on their own ("none / cosine to x0 / 0.1")."""
    def rows(condition, **config):
        return [{"dataset": "d", "condition": condition, "seed": s, "status": "ok",
                 "fg_ari": 0.1 * s, "steps": 100, "config.optimizer": "adam",
                 **{f"config.{k}": v for k, v in config.items()}} for s in (1, 2)]

    df = pd.DataFrame(rows("flat", learning_rate=0.001, lr_decay="none", lr_final_ratio=0.0,
                           warmup_steps=0)
                      + rows("cosine", learning_rate=0.001, lr_decay="cosine",
                             lr_final_ratio=0.1, warmup_steps=0)
                      + rows("fast", learning_rate=0.002, lr_decay="cosine",
                             lr_final_ratio=0.05, warmup_steps=0))
    spec = {"name": "mini", "conditions": {"flat": {}, "cosine": {}, "fast": {}},
            "datasets": {"d": {}}}
    write_report(spec, df, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert ("| adam (0.001) / adam (0.001, cosine to x0.1) / adam (0.002, cosine to x0.05) |"
            in report)
