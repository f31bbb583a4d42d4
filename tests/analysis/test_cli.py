"""``python -m analysis`` run for real on the resolved spec.yaml the runner writes: exit status 2
and nothing written on a bad or unresolved spec or a bad results table, a marked test and exit 0
when a condition is missing. The runner is imported here only to write the spec as it does."""

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.__main__ import main
from analysis.resolved_spec import check_resolved_spec
from monetk_runner.cli import _snapshot
from monetk_runner.expand import load_runs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
RESULTS = FIXTURES / "section3_3_results.csv"


def _specs(tmp_path: Path) -> Path:
    """Copies of the project's section 3.3 spec and its base (profiles, extends) in tmp_path."""
    for name in ("base.yaml", "section3_3.yaml"):
        shutil.copy(ROOT / "specs" / name, tmp_path / name)
    return tmp_path / "section3_3.yaml"


def _resolved(tmp_path: Path, profile: str = "paper", edit=None) -> Path:
    """The section 3.3 spec resolved for ``profile`` and written as ``runner.py`` writes
    OUT/section3_3/spec.yaml; ``edit(dict)`` changes the resolved data before it is written."""
    spec = load_runs(_specs(tmp_path), profile)[0]
    text = _snapshot(spec, ["specs/section3_3.yaml", "--profile", profile])
    if edit is not None:
        data = yaml.safe_load(text)
        edit(data)
        text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path / "out_runs" / "section3_3" / "spec.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def _main(*args: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main([str(a) for a in args])


def test_the_runners_resolved_spec_and_a_results_table(tmp_path, capsys):
    spec = _resolved(tmp_path, "demo")
    out = tmp_path / "out"
    assert _main(spec, RESULTS, "--out", out) == 0
    assert "tests_csv:" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "Spec `section3_3`, profile `demo`" in report
    assert 'the paper\'s limit "0.05/3 = 0.016"' in report
    tests = pd.read_csv(out / "tests.csv")
    assert set(tests["test"]) == {"pairs", "pairs_bonferroni"} and (tests["m"] == 3).all()


def test_a_spec_typo_exits_2_names_file_and_key_and_writes_nothing(tmp_path, capsys):
    def typo(data):
        data["tests"][1]["corection"] = data["tests"][1].pop("correction")

    spec = _resolved(tmp_path, edit=typo)
    out = tmp_path / "out"
    assert _main(spec, RESULTS, "--out", out) == 2
    err = capsys.readouterr().err
    assert f"{spec}: tests[1].corection: unknown key for kind wilcoxon" in err
    assert "nothing was written" in err and not out.exists()


def test_a_spec_as_written_exits_2_and_names_the_resolved_file(tmp_path, capsys):
    out = tmp_path / "out"
    spec = _specs(tmp_path)  # extends base.yaml, declares profiles
    assert _main(spec, RESULTS, "--out", out) == 2
    err = capsys.readouterr().err
    assert f"{spec}: extends: this is a spec as written, not a resolved one" in err
    assert f"{spec}: profiles: this is a spec as written" in err
    assert "OUT/<name>/spec.yaml" in err and "--report-only" in err and not out.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed\n", "not valid YAML"),
        ("- a list\n", "(top level): expected a mapping (a resolved spec), got list"),
        ("name: s\ndatasets: {objects_room: {}}\n", "conditions: required, a non-empty mapping"),
        ("name: s\ndatasets: {d: {}}\nconditions: {A: {}}\nsequential: {wave: 2}\n",
         "sequential.max_seeds: None: a resolved spec states it as an integer"),
    ],
)  # fmt: skip
def test_an_unusable_spec_file_exits_2(tmp_path, capsys, text, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    out = tmp_path / "out"
    assert _main(spec, RESULTS, "--out", out) == 2
    err = capsys.readouterr().err
    assert f"{spec}: " in err and message in err and not out.exists()


def test_a_missing_spec_file_exits_2(tmp_path, capsys):
    assert _main(tmp_path / "nope.yaml", RESULTS, "--out", tmp_path / "out") == 2
    assert "nope.yaml: cannot read the spec" in capsys.readouterr().err


def test_profile_and_set_are_the_runners_options_not_analysis(tmp_path):
    with pytest.raises(SystemExit) as exited:
        _main(_resolved(tmp_path), RESULTS, "--out", tmp_path / "out", "--profile", "demo")
    assert exited.value.code == 2


def test_every_shipped_spec_resolved_by_the_runner_passes_analysis_checks():
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        if path.name == "base.yaml":
            continue
        for profile in load_runs(path)[0].declared_profiles:
            written = _snapshot(load_runs(path, profile)[0], [str(path), "--profile", profile])
            assert check_resolved_spec(yaml.safe_load(written)) == [], (path.name, profile)


def test_a_bad_results_table_exits_2_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results.csv"
    pd.read_csv(RESULTS).drop(columns="status").to_csv(results)
    out = tmp_path / "out"
    assert _main(_resolved(tmp_path), results, "--out", out) == 2
    assert "missing column(s) status" in capsys.readouterr().err and not out.exists()


def test_a_missing_condition_is_marked_and_the_report_written(tmp_path):
    df = pd.read_csv(RESULTS)
    results = tmp_path / "results.csv"
    df[~((df["dataset"] == "objects_room") & (df["condition"] == "NLL+M"))].to_csv(results)
    out = tmp_path / "out"
    assert _main(_resolved(tmp_path), results, "--out", out) == 0
    report = (out / "report.md").read_text()
    assert (
        "- not computed (test pairs, dataset objects_room, MW+M vs NLL+M): condition 'NLL+M' has "
        "no runs for dataset objects_room" in report
    )
    assert "| objects_room | pairs | MSE+M vs MW+M | W = " in report
    assert report.count("block dropped") == 0


def test_as_a_process(tmp_path):
    spec = _resolved(tmp_path, "smoke", edit=lambda data: data["tests"][0].update(kind="wilcoxn"))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "analysis", spec, RESULTS, "--out", out],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "tests[0].kind: 'wilcoxn' is not one of" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()
