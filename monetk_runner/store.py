"""The content-addressed run store and the per-spec views onto it.

Layout under the output folder ``OUT``::

    OUT/store/<run id>/                      one folder per distinct training config (the run dir
                                             given to run_experiment: config.json, history.csv,
                                             checkpoint/, result.json, ...)
    OUT/<spec>/<dataset>/<condition>/seed-<n>  a relative symlink to ../../../store/<run id>
                                             (or, where symlinks fail, a folder with run.json)

A run is finished when ``result.json`` exists: run_experiment writes it last, atomically, and so
does the runner for a run that raised. A run whose folder has a ``checkpoint/`` but no result is
partial: training it again resumes from the checkpoint.

A run that continues past the stopping rule contains, up to the step where the rule fired, the run
that stops there: both train identically until then, and the continued one records the metrics of
that moment (``at_stop``). So a finished continued run also serves the stopped run of the same
config (:meth:`RunStore.find`), and a stopped run whose rule never fired (it trained to max_steps)
serves the continued one.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from monetk.io import SET_ASIDE, atomic_write_json, atomic_write_text, set_aside
from monetk_runner.expand import Run

__all__ = ["RunStore", "Found", "read_result", "atomic_write_json", "atomic_write_text"]

STORE = "store"
RESULT = "result.json"
CHECKPOINT = "checkpoint"
POINTER = "run.json"
STATES = ("done", "failed", "partial", "todo")


def read_result(run_dir: Path) -> dict | None:
    """The run's ``result.json``, or None when it has none. The runner writes it atomically, so a
    damaged one (a disk fault, a hand edit) is not a result: it is moved to ``set-aside/``, named
    on stderr, and the run counts as unfinished (it resumes or trains again)."""
    path = run_dir / RESULT
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(result, dict) or "status" not in result:
            raise ValueError("not a result (no status)")
        return result
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError included
        target = set_aside(path, run_dir / SET_ASIDE)
        print(f"{path}: unreadable ({error}); moved to {target}; the run will train again",
              file=sys.stderr)
        return None


@dataclass(frozen=True)
class Found:
    """The store folder that holds (or will hold) a run, its state, and its result if finished.

    ``aliased``: the run is served by its finished twin with the other continue setting.
    """

    run_id: str
    state: str
    result: dict | None
    aliased: bool = False


class RunStore:
    """Run folders under ``OUT/store`` and per-spec views under ``OUT/<spec>``."""

    def __init__(self, out: str | Path):
        self.out = Path(out).absolute()
        self.root = self.out / STORE

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def state(self, run_id: str) -> str:
        """done | failed (a result.json says so) | partial (a checkpoint, no result) | todo."""
        result = read_result(self.run_dir(run_id))
        if result is not None:
            return "done" if result.get("status") == "ok" else "failed"
        checkpoint = self.run_dir(run_id) / CHECKPOINT
        return "partial" if checkpoint.is_dir() and any(checkpoint.iterdir()) else "todo"

    def find(self, run: Run) -> Found:
        """The store folder serving ``run``: its own, or a finished twin that contains it."""
        state = self.state(run.run_id)
        if state in ("done", "failed"):
            return Found(run.run_id, state, read_result(self.run_dir(run.run_id)))
        twin = read_result(self.run_dir(run.alt_id))
        # A continued twin always contains the stopped run; a stopped twin serves a continued run
        # only if its rule never fired, i.e. it trained to max_steps as well.
        if (
            twin is not None
            and twin.get("status") == "ok"
            and (not run.continued or twin.get("stop_step") is None)
        ):
            return Found(run.alt_id, "done", twin, aliased=True)
        return Found(run.run_id, state, None)

    def view_dir(self, spec_name: str, run: Run) -> Path:
        return self.out / spec_name / run.dataset / run.condition / f"seed-{run.seed}"

    def link_view(self, spec_name: str, run: Run, run_id: str) -> None:
        """Point the spec's view of ``run`` at ``store/<run_id>`` (created if missing)."""
        target_dir = self.run_dir(run_id)
        target_dir.mkdir(parents=True, exist_ok=True)
        view = self.view_dir(spec_name, run)
        view.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(target_dir, view.parent)
        if view.is_symlink() and os.readlink(view) == target:
            return
        if not (view.is_dir() and not view.is_symlink()):
            temporary = view.with_name(f".{view.name}.{os.getpid()}.link")
            try:
                if temporary.is_symlink():
                    temporary.unlink()
                os.symlink(target, temporary, target_is_directory=True)
                os.replace(temporary, view)
                return
            except OSError:
                view.mkdir(parents=True, exist_ok=True)
        pointer = {"run_id": run_id, "store": os.path.relpath(target_dir, view)}
        atomic_write_json(view / POINTER, pointer)

    def drop_stale_view(self, spec_name: str, run: Run, run_id: str) -> None:
        """Remove the spec's view of ``run`` when it points at a run other than ``run_id`` (a view
        left by an earlier config of the spec), so that results.csv and the report never show
        another run's records for it."""
        view = self.view_dir(spec_name, run)
        target = self.view_target(view)
        if target is None or target == run_id:
            return
        if view.is_symlink():
            view.unlink()
        else:
            (view / POINTER).unlink()

    def view_target(self, view: Path) -> str | None:
        """The run id a view points at, or None if ``view`` is not a view."""
        if view.is_symlink():
            return Path(os.readlink(view)).name
        pointer = view / POINTER
        if pointer.is_file():
            return json.loads(pointer.read_text(encoding="utf-8"))["run_id"]
        return None

    def views(self) -> dict[str, list[str]]:
        """run id -> the views pointing at it (``spec/dataset/condition/seed-n``), all specs."""
        found: dict[str, list[str]] = {}
        for view in sorted(self.out.glob("*/*/*/seed-*")):
            if view.parts[-4] == STORE:
                continue
            run_id = self.view_target(view)
            if run_id is not None:
                found.setdefault(run_id, []).append("/".join(view.parts[-4:]))
        return found
