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


class Twins:
    """The finished runs that a longer run can start from, read from the store once (on the first
    question) and indexed by their config without ``max_steps``: each trained to its own
    ``max_steps`` with a constant learning rate and kept its final state and model."""

    def __init__(self, store: RunStore):
        self.store = store
        self._index: dict[str, list[tuple[int, str, int]]] | None = None

    def _read(self) -> dict[str, list[tuple[int, str, int]]]:
        index: dict[str, list[tuple[int, str, int]]] = {}
        runs = self.store.root.iterdir() if self.store.root.is_dir() else []
        for run_dir in runs:
            if not ((run_dir / FINAL_STATE).is_file() and (run_dir / FINAL_MODEL).is_file()):
                continue
            result = read_result(run_dir)
            try:
                twin = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            steps = twin["train"]["max_steps"]
            if (result is None or result.get("status") != "ok" or result.get("steps") != steps
                    or twin["train"].get("lr_decay", "none") != "none"):
                continue
            index.setdefault(_length_free_id(twin), []).append(
                (steps, run_dir.name, _epoch(twin["train"])))
        return index

    def longest(self, config: Mapping[str, Any]) -> tuple[str, int] | None:
        """(run id, step) of the longest finished run ``config``'s run can start from: the same
        config but a smaller ``max_steps`` and the same steps per epoch; None if there is none."""
        train = config["train"]
        if train.get("lr_decay", "none") != "none":
            return None
        if self._index is None:
            self._index = self._read()
        fits = [(steps, run_id) for steps, run_id, epoch in
                self._index.get(_length_free_id(config), [])
                if steps < train["max_steps"] and epoch == _epoch(train)]
        return (max(fits)[1], max(fits)[0]) if fits else None

    def start(self, target_id: str, config: Mapping[str, Any]) -> str | None:
        """Copy the final state and model of :meth:`longest` into the untouched run ``target_id``
        (no result, no checkpoint) as its checkpoint and record it; a line saying so, or None."""
        target = self.store.run_dir(target_id)
        if (target / "result.json").exists() or (target / CHECKPOINT).exists():
            return None
        found = self.longest(config)
        if found is None:
            return None
        twin_id, step = found
        source = self.store.run_dir(twin_id)
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
