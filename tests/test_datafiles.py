"""The runner without the paper's data files: the message offers the fetch command and the
no-download profiles, and ``--dry-run`` shows each dataset's data file state (exit 2 when a run
could not start). Files in DeepMind's layout come from the independent writer (``deepmind``)."""

from pathlib import Path

from monetk_runner.cli import main

SPECS = Path(__file__).resolve().parents[1] / "specs"
MD_FILE = "data/multi_dsprites_colored_on_colored.tfrecords"
OR_FILE = "data/objects_room_train.tfrecords"


def _small_spec(tmp_path) -> str:
    """base.yaml's paper data paths and profiles, one condition, two seeds."""
    path = tmp_path / "small.yaml"
    path.write_text(f"extends: {SPECS / 'base.yaml'}\nname: small\nseeds: 1-2\n"
                    "conditions: {A: {}}\n")
    return str(path)


def _write(deepmind, path, dataset, variant):
    images, labels = deepmind.random_scenes(2, deepmind.entities[(dataset, variant)])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    deepmind.write(path, images, labels, dataset, variant)


def _data_lines(out: str) -> dict[str, list[str]]:
    lines = out.splitlines()
    start = lines.index("Data files:")
    return {line.split()[0]: line.split()[1:] for line in lines[start + 1:]}


def test_the_headline_command_without_data_offers_the_fetch_and_the_no_download_profiles(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no data/ here
    spec = str(SPECS / "section3_3.yaml")
    assert main([spec, "--out", "out"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{MD_FILE} (data.source=multi_dsprites_tfrecord): no such file" in err[0]
    assert f"{OR_FILE} (data.source=objects_room_tfrecord): no such file" in err[1]
    assert err[2] == 'Download DeepMind\'s files (README.md, section "Paper scale"):'
    assert err[3] == "  python -m monetk.data fetch multi_dsprites objects_room"
    assert f"  python runner.py {spec} --profile demo" in err
    assert f"  python runner.py {spec} --profile smoke" in err
    assert f"  python runner.py {spec} --profile quick" in err
    assert err[-1] == "The data files cannot be read; nothing was run or written."
    assert not (tmp_path / "out").exists()
    # the offered profile gets past the data check
    assert main([spec, "--profile", "smoke", "--dry-run", "--out", "out"]) == 0


def test_dry_run_shows_each_datasets_data_state_and_exits_2_when_a_run_cannot_start(
        tmp_path, monkeypatch, deepmind, capsys):
    monkeypatch.chdir(tmp_path)
    spec = _small_spec(tmp_path)
    dry = [spec, "--dry-run", "--out", "out"]
    _write(deepmind, OR_FILE, "objects_room", "train")
    _write(deepmind, MD_FILE, "objects_room", "train")  # the wrong dataset's layout
    assert main(dry) == 2
    captured = capsys.readouterr()
    assert _data_lines(captured.out) == {"multi_dsprites:": ["wrong", "layout", MD_FILE],
                                         "objects_room:": ["present", OR_FILE]}
    assert f"{MD_FILE} (data.source=multi_dsprites_tfrecord): record 0:" in captured.err
    assert "fetch" not in captured.err  # fetch replaces no file: the message says where to read
    assert captured.err.splitlines()[-1] == ("2 of the 4 selected runs could not start: their "
                                             "data files cannot be read (nothing was written).")

    Path(MD_FILE).write_bytes(b"not a TFRecord file")
    assert main(dry) == 2
    assert _data_lines(capsys.readouterr().out)["multi_dsprites:"] == ["unreadable", MD_FILE]

    Path(MD_FILE).unlink()
    assert main(dry) == 2
    captured = capsys.readouterr()
    assert _data_lines(captured.out)["multi_dsprites:"] == ["missing", MD_FILE]
    assert "  python -m monetk.data fetch multi_dsprites" in captured.err.splitlines()

    _write(deepmind, MD_FILE, "multi_dsprites", "colored_on_colored")
    assert main(dry) == 0
    assert _data_lines(capsys.readouterr().out) == {"multi_dsprites:": ["present", MD_FILE],
                                                    "objects_room:": ["present", OR_FILE]}

    assert main([*dry, "--profile", "smoke"]) == 0
    assert _data_lines(capsys.readouterr().out) == {
        "multi_dsprites:": ["generated", "(built-in", "multi_dsprites_generated)"],
        "objects_room:": ["generated", "(built-in", "objects_room_generated)"]}
    assert not (tmp_path / "out").exists()


def test_a_missing_file_in_another_folder_gets_fetch_into_that_folder(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    args = [_small_spec(tmp_path), "--datasets", "objects_room", "--out", "out",
            "--set", f"datasets.objects_room.data.path={elsewhere}/objects_room_train.tfrecords"]
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"  python -m monetk.data fetch objects_room --dir {elsewhere}" in err
    assert not (tmp_path / "out").exists()
