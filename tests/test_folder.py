"""One folder, one experiment: OUT/<name>/experiment.json, refusals with exit 2 that leave the
folder as it was, --report-only reusing the folder's overrides, and a report replaced whole."""

from __future__ import annotations

import shutil
from pathlib import Path

from monetk_runner.cli import main
from tests.test_runner import SPECS, ReportSpy, fake, runner, smoke  # noqa: F401 (fixture)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_the_folder_records_what_made_it_and_refuses_another_spec_of_the_same_name(
        tmp_path, fake, capsys):
    out = tmp_path / "runs"
    assert runner(out, *smoke("section3_2"), "--seeds", "1", train=fake) == 0
    folder = out / "section3_2"
    before = _tree(folder)
    assert '"profile": "smoke"' in before["experiment.json"].decode()
    copy = tmp_path / "specs" / "copy.yaml"  # a copied spec that kept `name: section3_2`
    copy.parent.mkdir()
    shutil.copy(SPECS / "section3_2.yaml", copy)
    shutil.copy(SPECS / "base.yaml", copy.parent / "base.yaml")
    capsys.readouterr()
    assert runner(out, str(copy), "--profile", "smoke", "--seeds", "1", train=fake) == 2
    error = capsys.readouterr().err
    assert "holds the experiment of" in error and "copy.yaml has the same name" in error
    assert "give it another `name:`" in error and "nothing was run or written" in error
    assert _tree(folder) == before


def test_other_overrides_are_refused_and_report_only_reuses_the_folders(tmp_path, fake, capsys):
    out = tmp_path / "runs"
    seven = ["--set", "defaults.train.max_steps=7"]
    assert runner(out, *smoke("section3_2"), "--seeds", "1", *seven, train=fake) == 0
    folder = out / "section3_2"
    before = _tree(folder)
    capsys.readouterr()
    nine = ["--set", "defaults.train.max_steps=9"]
    assert runner(out, *smoke("section3_2"), *nine, "--report-only", train=fake) == 2
    error = capsys.readouterr().err
    assert "--set defaults.train.max_steps=7; this command is" in error
    assert _tree(folder) == before
    spy = ReportSpy()
    assert runner(out, str(SPECS / "section3_2.yaml"), "--report-only", report=spy) == 0
    assert "--report-only: the folder's profile and overrides" in capsys.readouterr().out
    [(spec, results, _, _)] = spy.calls
    assert spec["profile"] == "smoke" and spec["overrides"] == ["defaults.train.max_steps=7"]
    assert spec["defaults"]["train"]["max_steps"] == 7
    assert set(results["status"]) == {"ok", "missing"}  # seed 1 trained, seed 2 not


def test_a_rewritten_report_keeps_no_file_of_the_previous_one(tmp_path):
    out = tmp_path / "runs"
    argv = [*smoke("section3_2"), "--seeds", "1", "--out", str(out)]
    assert main([*argv, "--datasets", "multi_dsprites"], train=None) == 0
    report = out / "section3_2" / "report"
    (report / "stale.png").write_bytes(b"old")
    names = {p.name for p in report.iterdir()}
    assert main([*argv, "--report-only"]) == 0
    assert not (report / "stale.png").exists()
    assert {p.name for p in report.iterdir()} == names - {"stale.png"}
    assert not list(report.parent.glob(".report*"))  # no temporary folder left
    text = (report / "report.md").read_text()
    assert "Command: `python runner.py" in text and "overrides of the spec: none." in text
    assert "| multi_dsprites | 16 px | 3 | 20; 20 | 8 | adam (0.001) |" in text
    assert "torch CPU kernels: " in text and "torch CPU kernels: not recorded" not in text
