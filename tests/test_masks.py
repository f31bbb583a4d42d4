"""``runner.py SPEC --masks``: the masks of chosen finished runs as PNG and PDF, and a clear error
(exit 2, nothing drawn) naming a chosen run that is not finished (monetk_runner.masks)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from monetk_runner.cli import main
from monetk_runner.expand import load_runs
from monetk_runner.masks import title
from monetk_runner.plan import Planned
from monetk_runner.store import Found, RunStore

SPEC = Path(__file__).resolve().parents[1] / "specs" / "section3_2.yaml"
SMOKE = [str(SPEC), "--profile", "smoke"]


def examples(n: int = 4, k: int = 3, size: int = 16) -> dict[str, np.ndarray]:
    """Arrays as run_experiment saves them (contract D): images in [0, 1], masks summing to 1."""
    rng = np.random.default_rng(0)
    masks = rng.random((n, k, size, size))
    return {"image": rng.random((n, size, size, 3)),
            "reconstruction": rng.random((n, size, size, 3)),
            "masks": masks / masks.sum(axis=1, keepdims=True),
            "components": rng.random((n, k, size, size, 3)),
            "labels": rng.integers(0, 4, (n, size, size))}


def finish(store: RunStore, run, status: str = "ok", with_examples: bool = True) -> Path:
    run_dir = store.run_dir(run.run_id)
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps(
        {"status": status, "reason": None if status == "ok" else "NaN loss at step 7",
         "steps": 20, "stop_step": None, "final": {"fg_ari": 0.5} if status == "ok" else None}))
    if with_examples:
        np.savez_compressed(run_dir / "attention_examples.npz", **examples())
    return run_dir


@pytest.fixture
def store(tmp_path):
    """Section 3.2's smoke runs: objects_room NLL+M seed 1 and 2 finished, IR+M seed 1 failed,
    IR+M seed 2 partial (a checkpoint, no result); the rest not trained."""
    _, runs = load_runs(SPEC, "smoke")
    run = {(r.dataset, r.condition, r.seed): r for r in runs}
    store = RunStore(tmp_path / "out")
    finish(store, run["objects_room", "NLL+M", 1])
    finish(store, run["objects_room", "NLL+M", 2])
    finish(store, run["objects_room", "IR+M", 1], status="failed", with_examples=False)
    checkpoint = store.run_dir(run["objects_room", "IR+M", 2].run_id) / "checkpoint"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state-10.json").write_text("{}")
    return store


def test_masks_of_a_chosen_run_are_drawn_as_png_and_pdf(store, capsys):
    assert main([*SMOKE, "--masks", "--datasets", "objects_room", "--conditions", "NLL+M",
                 "--seeds", "1-2", "--out", str(store.out)]) == 0
    folder = store.out / "section3_2" / "masks"
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["objects_room_NLL+M_seed-1.pdf", "objects_room_NLL+M_seed-1.png",
                     "objects_room_NLL+M_seed-2.pdf", "objects_room_NLL+M_seed-2.png"]
    assert all(path.stat().st_size > 1000 for path in folder.iterdir())
    out = capsys.readouterr().out
    assert f"Masks: {folder / 'objects_room_NLL+M_seed-1.png'} (and " in out
    assert "objects_room_NLL+M_seed-2.png" in out


@pytest.mark.parametrize(("chosen", "says"), [
    (["--conditions", "NLL+M,IR+M", "--seeds", "1"],
     "objects_room / IR+M / seed 1: failed result: NaN loss at step 7"),
    (["--conditions", "IR+M", "--seeds", "2"], "objects_room / IR+M / seed 2: not finished "
                                               "(partial"),
    (["--conditions", "NLL+M", "--set", "seeds=1-3"], "objects_room / NLL+M / seed 3: not "
                                                      "trained yet"),
])
def test_a_run_that_is_not_finished_is_named_and_nothing_is_drawn(store, capsys, chosen, says):
    assert main([*SMOKE, "--masks", "--datasets", "objects_room", *chosen,
                 "--out", str(store.out)]) == 2
    err = capsys.readouterr().err
    assert says in err and "nothing was drawn" in err
    assert "NLL+M / seed 1" not in err  # finished: not named
    assert not (store.out / "section3_2" / "masks").exists()


def test_a_finished_run_without_examples_is_named(store, capsys):
    _, runs = load_runs(SPEC, "smoke")
    run = next(r for r in runs if (r.dataset, r.condition, r.seed) == ("multi_dsprites",
                                                                       "NLL+M", 1))
    finish(store, run, with_examples=False)
    assert main([*SMOKE, "--masks", "--datasets", "multi_dsprites", "--conditions", "NLL+M",
                 "--seeds", "1", "--out", str(store.out)]) == 2
    assert "multi_dsprites / NLL+M / seed 1: finished, but " in capsys.readouterr().err


def test_a_stopped_run_drawn_from_its_continued_twin_says_so():
    _, runs = load_runs(SPEC, "smoke")
    run = dataclasses.replace(runs[0])
    result = {"status": "ok", "steps": 20, "stop_step": 10, "final": {"fg_ari": 0.9},
              "at_stop": {"fg_ari": 0.4}}
    stopped = Planned(run, Found(run.alt_id, "done", result, aliased=True), ())
    assert title(stopped) == (f"{run.dataset} / {run.condition} / seed {run.seed}: FG-ARI "
                              "0.400, 10 steps (masks of the continued run at step 20)")


@pytest.mark.slow
def test_real_smoke_run_then_its_masks(tmp_path, capsys):
    out = str(tmp_path / "out")
    chosen = ["--datasets", "objects_room", "--conditions", "NLL+M", "--seeds", "1"]
    assert main([*SMOKE, *chosen, "--workers", "1", "--out", out]) == 0
    assert main([*SMOKE, *chosen, "--masks", "--out", out]) == 0
    png = tmp_path / "out" / "section3_2" / "masks" / "objects_room_NLL+M_seed-1.png"
    assert png.is_file() and png.with_suffix(".pdf").is_file()
    assert f"Masks: {png}" in capsys.readouterr().out
