"""A longer run starts where a finished shorter one ended.

Two runs whose configs differ only in ``train.max_steps`` train identically up to the shorter one's
end: the batches are a function of the seed and the step (:class:`monetk.pipeline.TrainBatches`),
the checkpoint carries the model, the optimizer and the callbacks' state, and a constant learning
rate (``train.lr_decay: none``) does not depend on ``max_steps``. A finished run keeps its last
checkpoint as ``model.keras`` (weights and optimizer state) and ``final_state.json`` (the
callbacks' state; :data:`monetk.experiment.FINAL_STATE`). So before a run is trained from scratch,
the runner copies these two of the longest finished twin that trained to its own ``max_steps``
into the run's checkpoint folder, and the run resumes there: the steps lever of a convergence
study costs only the steps added. ``extended_from.json`` in the run's folder says which run and
step it started from.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping
from typing import Any

from monetk_runner.identity import run_id
from monetk_runner.store import CHECKPOINT, RunStore, atomic_write_json, read_result

RECORD = "extended_from.json"
FINAL_STATE, FINAL_MODEL = "final_state.json", "model.keras"  # monetk.experiment's names


def _length_free_id(config: Mapping[str, Any]) -> str:
    """The run id of ``config`` with ``train.max_steps`` set aside."""
    return run_id({**config, "train": {**config["train"], "max_steps": 0}})


def _epoch(train: Mapping[str, Any]) -> int:
    """Steps per epoch, as monetk.experiment.steps_per_epoch computes them."""
    return math.gcd(train["check_every"], train["checkpoint_every"], train["max_steps"])


def shorter_twin(store: RunStore, config: Mapping[str, Any]) -> tuple[str, int] | None:
    """(run id, step) of the finished run whose final checkpoint ``config``'s run can start from:
    the same config but a smaller ``max_steps`` that it trained to, the same steps per epoch and
    a constant learning rate; the longest such run; None if there is none."""
    train = config["train"]
    if train.get("lr_decay", "none") != "none" or not store.root.is_dir():
        return None
    key, best = _length_free_id(config), None
    for run_dir in store.root.iterdir():
        result = read_result(run_dir) if (run_dir / "result.json").is_file() else None
        if result is None or result.get("status") != "ok":
            continue
        try:
            twin = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        steps = twin["train"]["max_steps"]
        if not (result.get("steps") == steps < train["max_steps"]
                and _epoch(twin["train"]) == _epoch(train)
                and (run_dir / FINAL_STATE).is_file() and (run_dir / FINAL_MODEL).is_file()
                and _length_free_id(twin) == key):
            continue
        if best is None or steps > best[1]:
            best = (run_dir.name, steps)
    return best


def start_from_twin(store: RunStore, target_id: str, config: Mapping[str, Any]) -> str | None:
    """Copy the final checkpoint of :func:`shorter_twin` into the untouched run ``target_id`` (no
    result, no checkpoint) and record it; return a line saying so, or None."""
    target = store.run_dir(target_id)
    if (target / "result.json").exists() or (target / CHECKPOINT).exists():
        return None
    found = shorter_twin(store, config)
    if found is None:
        return None
    twin_id, step = found
    source = store.run_dir(twin_id)
    state = json.loads((source / FINAL_STATE).read_text(encoding="utf-8"))
    state = {**state, "model": f"ckpt-{step}.keras"}
    staging = target / f".{CHECKPOINT}.copying"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copy2(source / FINAL_MODEL, staging / f"ckpt-{step}.keras")
    for name in (f"state-{step}.json", "state.json"):
        (staging / name).write_text(json.dumps(state), encoding="utf-8")
    staging.rename(target / CHECKPOINT)
    atomic_write_json(target / RECORD, {"run_id": twin_id, "step": step})
    return f"{target_id} starts from the finished run {twin_id} at step {step:,}"

