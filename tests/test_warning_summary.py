"""A repeated warning is one line and a count at the end, not a flood (issue 30: a report over a
store with failed runs printed 144 BlockDroppedWarning lines with their source line)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest

from monetk_runner.cli import main
from monetk_runner.warning_summary import collapse_warnings

SPECS = Path(__file__).resolve().parents[1] / "specs"


class BlockDroppedWarning(UserWarning):
    pass


def drop_blocks(count: int) -> None:
    for seed in range(1, count + 1):  # one place, a different text each time
        warnings.warn(f"objects_room, condition 'NLL+M', seed {seed}: run failed; block dropped",
                      BlockDroppedWarning, stacklevel=1)


def test_a_repeated_warning_is_one_line_and_a_count_at_the_end():
    stream, before = io.StringIO(), warnings.showwarning
    with collapse_warnings(stream):
        drop_blocks(144)
        warnings.warn("something else", RuntimeWarning, stacklevel=1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("warning: BlockDroppedWarning: objects_room, condition 'NLL+M', "
                               "seed 1: run failed; block dropped (tests/test_warning_summary.py:")
    assert lines[1].startswith("warning: RuntimeWarning: something else (")
    assert lines[2].startswith("warning: 143 more BlockDroppedWarning from "
                               "tests/test_warning_summary.py:")
    assert lines[2].endswith("like the one above (144 in all)")
    assert warnings.showwarning is before  # restored


def test_the_filters_still_apply():
    with collapse_warnings(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(BlockDroppedWarning):
            drop_blocks(1)


def test_the_runner_collapses_the_warnings_of_its_report(tmp_path, capsys):
    def report(spec, results, report_dir, results_dir):
        drop_blocks(50)

    assert main([str(SPECS / "section3_2.yaml"), "--profile", "smoke", "--report-only",
                 "--out", str(tmp_path / "out")], report=report) == 0
    err = capsys.readouterr().err
    assert err.count("BlockDroppedWarning") == 2 and "49 more BlockDroppedWarning" in err
    assert "warnings.warn(" not in err  # no source line
