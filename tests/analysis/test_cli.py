"""``python -m analysis`` run for real: the runner's spec loader, exit status 2 and nothing written
on a bad spec or results table, a marked test and exit 0 when a condition is missing."""

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd

from analysis.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def _specs(tmp_path: Path) -> Path:
    """Copies of the project's section 3.3 spec and its base (profiles, extends) in tmp_path."""
    for name in ("base.yaml", "section3_3.yaml"):
        shutil.copy(ROOT / "specs" / name, tmp_path / name)
    return tmp_path / "section3_3.yaml"


def _main(*args: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main([str(a) for a in args])


def test_the_projects_spec_and_a_results_table(tmp_path, capsys):
    spec = _specs(tmp_path)
    out = tmp_path / "out"
    assert _main(spec, FIXTURES / "section3_3_results.csv", "--out", out, "--profile", "demo") == 0
    assert "tests_csv:" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "Spec `section3_3`, profile `demo`." in report
    assert 'the paper\'s limit "0.05/3 = 0.016"' in report
    tests = pd.read_csv(out / "tests.csv")
    assert set(tests["test"]) == {"pairs", "pairs_bonferroni"} and (tests["m"] == 3).all()


def test_a_spec_typo_exits_2_names_file_and_key_and_writes_nothing(tmp_path, capsys):
    spec = _specs(tmp_path)
    spec.write_text(
        spec.read_text().replace("    correction: bonferroni", "    corection: bonferroni")
    )
    out = tmp_path / "out"
    assert _main(spec, FIXTURES / "section3_3_results.csv", "--out", out) == 2
    err = capsys.readouterr().err
    assert "section3_3.yaml: tests[1].corection: unknown key for kind wilcoxon" in err
    assert "nothing was written" in err and not out.exists()


def test_an_unknown_profile_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    assert _main(_specs(tmp_path), FIXTURES / "section3_3_results.csv", "--out", out,
                 "--profile", "huge") == 2  # fmt: skip
    assert "'huge' is not a profile" in capsys.readouterr().err and not out.exists()


def test_a_bad_results_table_exits_2_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results.csv"
    pd.read_csv(FIXTURES / "section3_3_results.csv").drop(columns="status").to_csv(results)
    out = tmp_path / "out"
    assert _main(_specs(tmp_path), results, "--out", out) == 2
    assert "missing column(s) status" in capsys.readouterr().err and not out.exists()


def test_a_missing_condition_is_marked_and_the_report_written(tmp_path):
    df = pd.read_csv(FIXTURES / "section3_3_results.csv")
    results = tmp_path / "results.csv"
    df[~((df["dataset"] == "objects_room") & (df["condition"] == "NLL+M"))].to_csv(results)
    out = tmp_path / "out"
    assert _main(_specs(tmp_path), results, "--out", out) == 0
    report = (out / "report.md").read_text()
    assert (
        "- not computed (test pairs, dataset objects_room, MW+M vs NLL+M): condition 'NLL+M' has "
        "no runs for dataset objects_room" in report
    )
    assert "| objects_room | pairs | MSE+M vs MW+M | W = " in report
    assert report.count("block dropped") == 0


def test_as_a_process(tmp_path):
    spec = _specs(tmp_path)
    spec.write_text(spec.read_text().replace("kind: wilcoxon", "kind: wilcoxn", 1))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "analysis", spec, FIXTURES / "section3_3_results.csv", "--out",
         out, "--profile", "smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "tests[0].kind: 'wilcoxn' is not one of" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()
