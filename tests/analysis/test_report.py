"""write_report and the CLI on the made-up fixtures: every file, with the expected rows."""

import shutil
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

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
    assert tests["p_value"].between(0, 1).all()

    report = (tmp_path / "report.md").read_text()
    for text in [
        "# Ablation of beta and gamma (section 3.1)",
        "**Deviations from the paper**",
        "20 made-up seeds instead of 100",
        "| objects_room | objects_room_generated |",
        "| objects_room | 10 | 19 | 1 | 0 | 20 |",
        "- failed: objects_room, condition 10, seed 7: NaN loss at step 120000",
        "- objects_room, condition '10', seed 7: run failed; block dropped from test beta",
        "| objects_room | beta | beta: 0.5 vs 0 (blocks: seed; mean over gamma) |",
        "Friedman about gamma, blocking stratified",
        "holm (m=2): adjusted p <= 0.05",
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
    assert list(tests["comparison"]) == ["MSE+M vs MW+M", "MW+M vs NLL+M", "NLL+M vs MSE+M"] * 2
    assert (tests["correction"] == "holm").all() and (tests["m"] == 3).all()
    # the exact p of 20 pairs of one sign survives the CSV round trip as a full float: 2 / 2^20
    assert tests.loc[0, "p_value"] == 2.0**-19
    report = (tmp_path / "report.md").read_text()
    for text in [
        "This profile runs the paper's settings.",
        "| objects_room | NLL+M | 19 | 0 | 1 | 20 |",
        "| multi_dsprites | pairs | MSE+M vs MW+M | W = 0 | 20 | 1.9e-06 | 5.7e-06 (holm) |",
        "0 (as printed)",
        "6.7e-16",
        "(auto -> exact); HL 95% CI: exact Walsh order statistics",
        "No run was trained past the stopping rule",
    ]:
        assert text in report, text
    rows = [line.split(" | ") for line in report.splitlines() if " | pairs | " in line]
    assert len(rows) == 6
    assert all(cells[5] not in ("0", "0.000") for cells in rows)  # the p column
    tex = (tmp_path / "tests.tex").read_text()
    assert r"MSE+M vs MW+M & W = 0 & 20 & 1.9e-06" in tex


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


def test_cli_loads_the_spec_through_runner(tmp_path, monkeypatch, capsys):
    calls = []

    def load_spec(path, profile=None):
        calls.append((Path(path).name, profile))
        return yaml.safe_load(Path(path).read_text())

    monkeypatch.setitem(sys.modules, "runner", types.SimpleNamespace(load_spec=load_spec))
    monkeypatch.delitem(sys.modules, "analysis.__main__", raising=False)
    from analysis.__main__ import main

    shutil.copy(FIXTURES / "section3_3_results.csv", tmp_path / "results.csv")
    args = [str(FIXTURES / "section3_3_spec.yaml"), str(tmp_path / "results.csv")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--out", str(tmp_path / "out"), "--profile", "paper"]) == 0
    assert calls == [("section3_3_spec.yaml", "paper")]
    assert (tmp_path / "out" / "report.md").is_file()
    assert "tests_csv:" in capsys.readouterr().out


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
        "summary_csv", "tests_csv", "summary_tex", "tests_tex", "boxplot_fg_ari", "report",
    }  # fmt: skip
    report = (tmp_path / "report.md").read_text()
    assert "The spec declares no tests." in report
    assert "No run was trained past the stopping rule" in report
    assert "- d / A (seed 3): no run directory known." in report
    assert "dashed line" not in report and "red diamonds" not in report
    assert pd.read_csv(tmp_path / "tests.csv").empty
    assert r"\begin{tabular}{lllllllll}" in (tmp_path / "tests.tex").read_text()
