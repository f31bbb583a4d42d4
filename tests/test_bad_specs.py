"""Bad specs never get past the check (issue 21): exit 2, the file, key and what is allowed, and
nothing written, whichever profile is chosen."""

from pathlib import Path

import pytest

from monetk_runner.cli import main

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _spec(tmp_path, body):
    path = tmp_path / "bad.yaml"
    conditions = "" if "conditions:" in body else "conditions: {A: {}}\n"
    path.write_text(f"extends: {SPECS / 'base.yaml'}\n{conditions}{body}\n")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: t\nseeds: 4294967296", "bad.yaml: seeds: 4294967296 is outside [0, 2**32)"),
        ("name: t\nseeds: [1, 100000000000000000000]", "is outside [0, 2**32)"),
        ("name: t\nseeds: 1-10000000", "holds 10,000,000 seeds, more than 100,000"),
        # the file's seeds are invalid; the smoke profile overrides them, the paper profile not
        ('name: t\nseeds: "5-1"', "bad.yaml: seeds: '5-1' is not a range: 5 > 1"),
        ("name: t\nseeds: 1-2\ncontinue_seeds: 500",
         "bad.yaml: continue_seeds: 500 not among the seeds (allowed: 1-2)"),
        ("name: store\nseeds: 1-2", "bad.yaml: name: 'store' is the run store's folder"),
        ("name: t\nseeds: 1-2\ndefaults: {loss: {beta: .nan}}",
         "bad.yaml: defaults.loss.beta: must be a finite number, got nan"),
        ("name: t\nseeds: 1-2\nconditions: {A: {loss: {gamma: .inf}}}",
         "bad.yaml: conditions.A.loss.gamma: must be a finite number, got inf"),
        ("name: t\nseeds: 1-2\ndefaults: {train: {stop_ratio: -5, epsilon: -1.0}}",
         "bad.yaml: defaults.train.stop_ratio: must be >= 0, got -5"),
        ("name: t\nseeds: 1-2\ndefaults: {eval: {batch_size: 0}}",
         "bad.yaml: defaults.eval.batch_size: must be > 0, got 0"),
        ("name: t\nseeds: 1-2\ndefaults: {train: {threads: many}}",
         "bad.yaml: defaults.train.threads: must be null"),
        ("name: t\nseeds: 1-2\ndefaults: {data: {min_objects: -3}}",
         "bad.yaml: defaults.data.min_objects: must be >= 0, got -3"),
        ("name: t\nseeds: 1-2\ndefaults: {data: {value_range: [a, b]}}",
         "bad.yaml: defaults.data.value_range: expected [low, high], two numbers"),
        ("name: t\nseeds: 1-2\nprofiles: {smoke: {defaults: {data: {num_train: 4}}}}",
         "data.num_train: must be >= train.batch_size (8), got 4"),
        ("name: t\nseeds: 1-2\nprofiles: {smoke: {defaults: {model: {unet_blocks: 10}}}}",
         "model.unet_blocks: must be null or an integer from 1 to 5"),
        # a value only the demo profile uses is refused under --profile smoke too
        ("name: t\nseeds: 1-2\nprofiles: {demo: {defaults: {loss: {beta: -1}}}}",
         "loss.beta: must be >= 0, got -1 (under profile demo)"),
    ],
)
def test_a_bad_spec_exits_2_naming_file_and_key_and_writes_nothing(tmp_path, capsys, body,
                                                                    message):
    out = tmp_path / "out"
    assert main([str(_spec(tmp_path, body)), "--profile", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "nothing was run or written" in err and not out.exists()


def test_a_spec_with_more_runs_than_the_cap_names_the_count_and_the_override(tmp_path, capsys):
    spec = _spec(tmp_path, "name: t\nseeds: 1-3")
    out = tmp_path / "out"
    assert main([str(spec), "--profile", "smoke", "--max-runs", "3", "--out", str(out)]) == 2
    assert ("the spec expands to 4 runs (2 datasets x 1 conditions x 2 seeds), more than 3; "
            "pass --max-runs 4 to allow it") in capsys.readouterr().err
    # every profile must fit: base.yaml's demo profile has 4 seeds, 8 runs
    assert main([str(spec), "--profile", "smoke", "--max-runs", "7", "--dry-run"]) == 2
    assert "expands to 8 runs" in capsys.readouterr().err
    assert main([str(spec), "--profile", "smoke", "--max-runs", "8", "--dry-run"]) == 0
