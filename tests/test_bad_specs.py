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
        ("name: t\nseeds: 1-2\ndefaults: {train: {callbacks: [{class: keras.callbacks.Nope}]}}",
         "bad.yaml: defaults.train.callbacks: entry 1: module keras.callbacks has no Nope"),
        ("name: t\nseeds: 1-2\nconditions: {A: {train: {callbacks: [{class: keras.callbacks."
         "CSVLogger, args: {fname: log.csv}}]}}}",
         "bad.yaml: conditions.A.train.callbacks: entry 1: keras.callbacks.CSVLogger(filename, "),
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


def _paper_scale_smoke(tmp_path, paths):
    """The smoke profile on DeepMind-layout files (the paper's data path at the smoke size)."""
    sets = []
    for dataset, path in paths.items():
        sets += ["--set", f"datasets.{dataset}.data.source={dataset}_tfrecord",
                 "--set", f"datasets.{dataset}.data.path={path}"]
    return [str(SPECS / "section3_2.yaml"), "--profile", "smoke", "--seeds", "1",
            "--out", str(tmp_path / "out"), *sets]


def test_missing_data_files_are_one_message_each_before_anything_is_written(tmp_path, capsys):
    paths = {"multi_dsprites": tmp_path / "md.tfrecords", "objects_room": tmp_path / "or.tfr"}
    assert main(_paper_scale_smoke(tmp_path, paths)) == 2
    err = capsys.readouterr().err
    for path in paths.values():
        assert f"{path} (data.source=" in err and "no such file" in err
    assert 'README.md, section "Paper scale"' in err
    assert "nothing was run or written" in err and not (tmp_path / "out").exists()


def test_a_file_in_another_layout_is_refused_before_anything_runs(tmp_path, deepmind, capsys):
    images, labels = deepmind.random_scenes(4, 7, seed=1)
    path = tmp_path / "or.tfrecords"
    deepmind.write(path, images, labels, "objects_room", "train")
    # an Objects Room file given as Multi-dSprites: the mask layout differs
    assert main(_paper_scale_smoke(tmp_path, {"multi_dsprites": path})) == 2
    err = capsys.readouterr().err
    assert f"{path} (data.source=multi_dsprites_tfrecord): record 0:" in err
    assert not (tmp_path / "out").exists()


def test_a_data_path_without_a_file_source_is_refused(tmp_path, capsys):
    # a --set of data.path alone under a profile with generated data used to be ignored silently
    args = [str(SPECS / "section3_2.yaml"), "--profile", "smoke", "--out", str(tmp_path / "o"),
            "--set", "datasets.multi_dsprites.data.path=/data/md.tfrecords"]
    assert main(args) == 2
    assert ("data.path: '/data/md.tfrecords' is set, but data.source='multi_dsprites_generated' "
            "is a built-in generator") in capsys.readouterr().err


def test_deepmind_files_train_through_the_runner_and_moving_them_keeps_the_runs(
        tmp_path, deepmind, capsys):
    data = tmp_path / "data"
    data.mkdir()
    paths = {}
    for dataset, variant in (("multi_dsprites", "colored_on_colored"), ("objects_room", "train")):
        images, labels = deepmind.random_scenes(96, deepmind.entities[(dataset, variant)], seed=3)
        paths[dataset] = data / f"{dataset}.tfrecords"
        deepmind.write(paths[dataset], images, labels, dataset, variant)
    assert main(_paper_scale_smoke(tmp_path, paths)) == 0
    assert "4 ok, 0 failed" in capsys.readouterr().out
    moved = tmp_path / "moved"
    data.rename(moved)
    args = _paper_scale_smoke(tmp_path, {d: moved / p.name for d, p in paths.items()})
    assert main(args) == 0
    assert "All 4 selected runs are complete; nothing to train." in capsys.readouterr().out


def _alias_bomb(levels: int = 12) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "surprise:\n" + "\n".join(f"  {line}" for line in lines)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_alias_bomb(), "expands to more than 1,000,000 nodes"),  # 10^12 leaves if expanded
        ("deep: " + "[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
        ("big: '" + "x" * 1_100_000 + "'", "more than 1,000,000"),
    ],
)
def test_a_spec_beyond_the_yaml_limits_is_refused_before_it_is_built(tmp_path, capsys, body,
                                                                     message):
    import resource

    path = tmp_path / "bad.yaml"
    path.write_text(f"name: t\nseeds: 1-2\n{body}\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main([str(path), "--out", str(tmp_path / "out")]) == 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    err = capsys.readouterr().err
    assert "bad.yaml: not valid YAML:" in err and message in err, err
