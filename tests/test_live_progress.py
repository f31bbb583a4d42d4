"""Progress a person can follow: a run reports its step and loss every few seconds, in this
process and from worker processes (not only at epoch ends), names its compiling; a board writing
to a file or a pipe writes plain lines, never a carriage return; Ctrl-C stops the workers without
a "leaked semaphore objects" warning."""

from __future__ import annotations

import importlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monetk_runner.executors import ProgressFile, Task, WorkerProcesses, read_progress
from monetk_runner.expand import load_runs
from monetk_runner.progress import RunBoard, describe
from monetk_runner.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

#: A trainer that reports like monetk's (every step here; ProgressFile paces the writes) and
#: trains slowly: 0.05 s a step, an epoch of 100 steps.
SLOW_TRAINER = '''
import multiprocessing, os, time
from pathlib import Path


def slow_run_experiment(config, run_dir, progress=None):
    Path(run_dir, "started").write_text(str(time.time()))
    queue = multiprocessing.Queue()  # named semaphores, as tensorboardX's event queue has
    queue.put("event")
    for step in range(1, 2001):
        time.sleep(0.05)
        info = {"loss": 100.0 / step}
        if step % 100 == 0:
            info.update(step_time_s=0.05, epoch_time_s=5.0)
        progress(step, 2000, **info)
    raise AssertionError("the test stops this run before its end")
'''


@pytest.fixture
def slow_trainer(tmp_path, monkeypatch):
    """:data:`SLOW_TRAINER`, importable by spawned workers (they get this ``sys.path``)."""
    folder = tmp_path / "slow_module"
    folder.mkdir()
    (folder / "slow_trainer.py").write_text(SLOW_TRAINER)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        str(folder), os.environ.get("PYTHONPATH", "")])))
    yield importlib.import_module("slow_trainer").slow_run_experiment
    sys.modules.pop("slow_trainer", None)


def _tasks(out: Path, count: int) -> list[Task]:
    _, runs = load_runs(SPECS / "section3_2.yaml", "smoke")
    store = RunStore(out)
    return [Task(r.run_id, r.config, str(store.run_dir(r.run_id)), r.label, str(ROOT))
            for r in runs[:count]]


class SeenBoard(RunBoard):
    """A plain board that records what each refresh shows and stops the batch (as Ctrl-C does)
    once it has seen a run at step 20 or later."""

    def __init__(self, tasks: list[Task]):
        super().__init__(tasks, workers=1, stream=io.StringIO(), refresh_every_s=0.5)
        self.seen: list[tuple[float, str, dict]] = []

    def refresh(self, tasks: list[Task]) -> None:
        super().refresh(tasks)
        for task in tasks:
            progress = read_progress(task.run_dir)
            if progress is not None:
                self.seen.append((time.time(), task.run_dir, progress))
        if any(p["step"] >= 20 for _, _, p in self.seen):
            raise KeyboardInterrupt


def test_a_worker_runs_steps_and_loss_reach_the_parent_within_seconds(tmp_path, slow_trainer):
    tasks = _tasks(tmp_path / "out", 1)
    board = SeenBoard(tasks)
    with pytest.raises(KeyboardInterrupt):
        WorkerProcesses(1, slow_trainer, gpus=[]).run(tasks, board)
    started = float(Path(tasks[0].run_dir, "started").read_text())
    first_at, _, first = next(seen for seen in board.seen if seen[2]["step"] > 0)
    assert 0 < first["step"] < 100 and first["loss"] == pytest.approx(100.0 / first["step"])
    assert first_at - started < 5.0  # an epoch end comes after 5 s; this came before
    assert "seed-1" in board.status() and "loss" in board.status()
    assert board.active  # the running run is on the board with its step


def test_progress_file_writes_a_phase_change_at_once_and_keeps_the_last_epoch(tmp_path):
    progress = ProgressFile(tmp_path, every_s=3600)
    progress(0, 10, phase="compiling")
    assert read_progress(tmp_path)["phase"] == "compiling"
    progress(1, 10, loss=2.0)  # the compile ended: written although within every_s
    assert "phase" not in read_progress(tmp_path) and read_progress(tmp_path)["step"] == 1
    progress(5, 10, loss=1.0, step_time_s=0.1, epoch_time_s=0.5)
    progress(6, 10, phase="compiling")
    written = read_progress(tmp_path)
    assert written["step"] == 6 and written["epoch"]["step"] == 5
    assert written["epoch"]["epoch_time_s"] == 0.5


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _board(tmp_path: Path, stream, clock=None, **options) -> tuple[RunBoard, list[Task]]:
    tasks = [Task(f"id{i}", {"train": {"max_steps": 100}}, str(tmp_path / f"r{i}"),
                  f"d/c/seed-{i}", str(tmp_path)) for i in (1, 2)]
    return RunBoard(tasks, stream=stream, clock=clock or FakeClock(), **options), tasks


def test_a_board_on_a_file_writes_plain_lines_every_n_seconds_and_no_carriage_return(tmp_path):
    stream, clock = io.StringIO(), FakeClock()
    board, tasks = _board(tmp_path, stream, clock, plain_every_s=30.0)
    progress = board.run_started(tasks[0])
    progress(0, 100, phase="compiling")  # at once: a run began compiling
    for second in range(1, 91):  # a report every second for 90 s, one step each
        clock.now += 1.0
        progress(second, 100, loss=50.0 - second / 10)
    board.run_finished(tasks[0], {"status": "ok", "steps": 100, "wall_time_s": 91.0})
    board.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    status = [line for line in lines if line.startswith("[") and "runs " in line]
    assert status[0] == "[0:00] runs 0/2 done | d/c/seed-1"  # when the run started
    assert status[1] == "[0:00] runs 0/2 done | d/c/seed-1 compiling"
    assert [line.split("]")[0] for line in status[2:]] == ["[0:30", "[1:00", "[1:30"]
    assert "d/c/seed-1 60% 60/100 loss 44" in status[3]
    assert lines[-1] == "[1/2] d/c/seed-1: ok steps=100 91.0 s"


def test_a_board_on_a_file_shows_the_workers_runs_and_their_compiling(tmp_path):
    stream, clock = io.StringIO(), FakeClock()
    board, tasks = _board(tmp_path, stream, clock, plain_every_s=30.0, refresh_every_s=2.0)
    for task in tasks:
        Path(task.run_dir).mkdir()
    ProgressFile(Path(tasks[0].run_dir))(40, 100, loss=3.5)
    ProgressFile(Path(tasks[1].run_dir))(0, 100, phase="compiling")
    board.refresh(tasks)
    clock.now += 1.0
    board.refresh(tasks)  # within refresh_every_s: nothing read, nothing written
    text = stream.getvalue()
    assert text == "[0:00] runs 0/2 done | d/c/seed-1 40% 40/100 loss 3.5; d/c/seed-2 compiling\n"


def test_a_board_on_a_terminal_draws_bars_with_the_compiling_run(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    board, tasks = _board(tmp_path, stream)
    board.run_started(tasks[0])(0, 100, phase="compiling")
    board.close()
    assert "\r" in stream.getvalue() and "seed-1 compiling" in stream.getvalue()


# A shell starts a foreground job with Ctrl-C's default handling, unblocked; a child inherits
# its parent's SIGINT disposition and signal mask, which the pytest process may have changed.
DRIVER = """
import signal
import sys
signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {root!r})
sys.path.insert(0, {trainer!r})
from monetk_runner.cli import main
from slow_trainer import slow_run_experiment

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], train=slow_run_experiment))
"""


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="sends Ctrl-C's SIGINT to a process group")
def test_ctrl_c_stops_the_workers_without_a_leaked_semaphore_warning(tmp_path, slow_trainer):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(root=str(ROOT), trainer=str(tmp_path / "slow_module")))
    out = tmp_path / "out"
    runner = subprocess.Popen(
        [sys.executable, str(driver), str(SPECS / "section3_2.yaml"), "--profile", "smoke",
         "--workers", "2", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own process group, as a terminal's foreground job
    deadline = time.time() + 90
    while len(list(out.glob("store/*/started"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert len(list(out.glob("store/*/started"))) == 2, "the workers did not start"
    os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C reaches the runner and its workers
    _, err = runner.communicate(timeout=180)  # a hang guard: a loaded 2-core CI machine is slow
    assert runner.returncode == 130, err
    assert "Interrupted" in err
    assert "leaked semaphore" not in err and "Traceback" not in err


def test_a_finished_runs_line_gives_the_fg_ari_the_tests_use():
    """A run trained on past the stopping rule (Table 1) is tested on its FG-ARI when the rule
    fired (results.csv's fg_ari), not at its last step: the line must not print the later value
    as the run's. Values as section 3.1's demo condition 00 seed 4 recorded them."""
    continued = {"status": "ok", "steps": 10000, "stop_step": 8000, "continued": True,
                 "at_stop": {"fg_ari": 0.38846, "ari": 0.915}, "final": {"fg_ari": 0.41055},
                 "reason": None, "wall_time_s": 877.5}
    assert describe(continued) == ("ok fg_ari=0.388 when the stopping rule fired at step 8000 "
                                   "(0.411 at step 10000) 877.5 s")
    stopped = {"status": "ok", "steps": 8000, "stop_step": 8000, "continued": False,
               "at_stop": None, "final": {"fg_ari": 0.3}, "reason": None, "wall_time_s": 700.0}
    assert describe(stopped) == "ok fg_ari=0.300 steps=8000 stopped at 8000 700.0 s"
    never = {"status": "ok", "steps": 10000, "stop_step": None, "continued": False,
             "at_stop": None, "final": {"fg_ari": 0.25}, "reason": None, "wall_time_s": 800.0}
    assert describe(never) == "ok fg_ari=0.250 steps=10000 800.0 s"
