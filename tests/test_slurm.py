"""``--executor slurm`` (:mod:`monetk_runner.slurm`).

Jobs run on submitit's local executor (the hidden ``--slurm-cluster local``: each job a process
on this machine, with submitit's job pickles, signals and requeueing); the job script that Slurm
would get is checked with stand-in ``sbatch``, ``srun``, ``sacct`` and ``scancel`` commands. Nothing
here runs on a Slurm cluster.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import submitit

import tests.test_runner as base
from monetk_runner import cli, executors
from monetk_runner.cli import main
from monetk_runner.executors import InProcess
from monetk_runner.slurm import SlurmJobs

fake = base.fake  # the fake trainer fixture (contract A, numbers from the config)
LOCAL_JOBS = ["--executor", "slurm", "--slurm-cluster", "local", "--slurm-gpus-per-run", "0"]


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(SlurmJobs, "poll_s", 0.2)


def trainer_module(fake, name: str, text: str):
    """A trainer module beside the fake one (importable by the jobs, through PYTHONPATH)."""
    folder = Path(sys.modules[fake.__module__].__file__).parent
    (folder / f"{name}.py").write_text(text)
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def test_smoke_spec_as_slurm_jobs_gives_the_results_csv_of_the_local_executor(
        tmp_path, fake, capsys):
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    assert base.runner(local, *base.smoke("section3_2"), train=fake) == 0
    in_local = len(fake.calls())
    assert base.runner(slurm, *base.smoke("section3_2"), *LOCAL_JOBS, "--cpus-per-run", "2",
                       train=fake) == 0
    jobs = fake.calls()[in_local:]
    assert len(jobs) == 8 and os.getpid() not in {call["pid"] for call in jobs}
    assert {call["threads"] for call in jobs} == {"2"}  # --cpus-per-run
    name = "section3_2/results.csv"
    assert (slurm / name).read_text() == (local / name).read_text()
    logs = slurm / "section3_2" / "slurm"
    assert "Slurm jobs; submitit's folder (job logs): " + str(logs) in capsys.readouterr().out
    assert len(list(logs.glob("*_0_log.out"))) == 8
    assert all((slurm / "section3_2" / row / "log.txt").is_file()
               for row in pd.read_csv(slurm / name)["run_dir"])

    assert base.runner(slurm, *base.smoke("section3_2"), *LOCAL_JOBS, train=fake) == 0
    assert "All 8 selected runs are complete; nothing to train." in capsys.readouterr().out
    assert len(fake.calls()) == in_local + 8 and len(list(logs.glob("*_0_log.out"))) == 8


def test_a_job_skips_a_finished_run_and_leaves_a_locked_one_alone(tmp_path, fake):
    done, held = base._tasks(tmp_path / "out", 2)
    finished = InProcess(fake).run([done], base.QuietBoard())[done.run_id]
    Path(held.run_dir).mkdir(parents=True)
    board = base.QuietBoard()
    with open(Path(held.run_dir) / executors.LOCK, "w") as lock:  # another runner's
        fcntl.flock(lock, fcntl.LOCK_EX)
        outcomes = SlurmJobs(tmp_path / "jobs", cluster="local", gpus_per_run=0,
                             train=fake).run([done, held], board)
    assert outcomes[done.run_id] == finished and outcomes[held.run_id]["status"] == "busy"
    assert len(fake.calls()) == 1  # neither job trained
    assert sorted(board.finished) == sorted([(done.label, "ok"), (held.label, "busy")])


def test_a_run_that_raises_in_its_job_is_recorded_as_failed(tmp_path, fake):
    out = tmp_path / "out"
    args = [*base.smoke("section3_2"), "--datasets", "multi_dsprites", "--seeds", "1",
            "--set", "conditions.IR+M.loss.beta=0.123", *LOCAL_JOBS]
    assert base.runner(out, *args, train=fake) == 1
    results = pd.read_csv(out / "section3_2" / "results.csv", keep_default_na=False)
    ran = results[results["status"].isin(["ok", "failed"])].set_index("condition")
    assert ran.loc["NLL+M", "status"] == "ok"
    assert ran.loc["IR+M", "status"] == "failed"
    assert ran.loc["IR+M", "reason"] == "RuntimeError: boom in the model"


DYING_TRAINER = """
import os, signal
from pathlib import Path

def dying_run_experiment(config, run_dir, progress=None):
    checkpoint = Path(run_dir) / "checkpoint"
    checkpoint.mkdir(parents=True, exist_ok=True)
    (checkpoint / "state.json").write_text("{}")  # trained a while
    os.kill(os.getpid(), signal.SIGKILL)  # the node failed, or Slurm killed the job
"""


def test_a_killed_job_leaves_its_run_resumable_and_the_runner_goes_on(
        tmp_path, fake, monkeypatch, capsys):
    monkeypatch.setattr(submitit.core.core.Job, "_results_timeout_s", 0)  # no slow file system
    dying = trainer_module(fake, "dying_trainer", DYING_TRAINER).dying_run_experiment
    out = tmp_path / "out"
    args = [*base.smoke("section3_2"), "--datasets", "multi_dsprites", "--conditions", "NLL+M",
            "--seeds", "1", *LOCAL_JOBS]
    assert base.runner(out, *args, train=dying) == 1
    assert "interrupted (job " in capsys.readouterr().err
    (run_dir,) = (out / "store").iterdir()
    assert not (run_dir / "result.json").exists()  # not recorded as failed: resumable

    assert base.runner(out, *args, train=fake) == 0
    assert "1 partial, 0 todo" in capsys.readouterr().out
    assert [call["resumed"] for call in fake.calls()] == [True]


PREEMPTIBLE_TRAINER = """
import os, time
from pathlib import Path
from fake_trainer import fake_run_experiment

def preemptible_run_experiment(config, run_dir, progress=None):
    checkpoint = Path(run_dir) / "checkpoint"
    if not checkpoint.is_dir():  # first start: save a checkpoint, then wait to be preempted
        checkpoint.mkdir(parents=True)
        Path(os.environ["PID_DIR"], str(os.getpid())).touch()
        time.sleep(120)
    return fake_run_experiment(config, run_dir, progress)
"""


def test_a_preempted_job_is_requeued_and_resumes_its_run(tmp_path, fake, monkeypatch):
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("PID_DIR", str(pids))
    preemptible = trainer_module(fake, "preemptible_trainer", PREEMPTIBLE_TRAINER)

    def preempt() -> None:  # Slurm's warning signal, as submitit asks for it (USR2)
        deadline = time.time() + 60
        while not list(pids.iterdir()) and time.time() < deadline:
            time.sleep(0.1)
        for pid in pids.iterdir():
            os.kill(int(pid.name), signal.SIGUSR2)

    signaller = threading.Thread(target=preempt)
    signaller.start()
    out = tmp_path / "out"
    args = [*base.smoke("section3_2"), "--datasets", "multi_dsprites", "--conditions", "NLL+M",
            "--seeds", "1", *LOCAL_JOBS]
    try:
        assert base.runner(out, *args, train=preemptible.preemptible_run_experiment) == 0
    finally:
        signaller.join()
    assert len(list(pids.iterdir())) == 1
    assert [call["resumed"] for call in fake.calls()] == [True]  # the requeued job resumed
    logs = "".join(p.read_text() for p in (out / "section3_2" / "slurm").glob("*_0_log.err"))
    assert "this job is preempted" in logs


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--slurm-partition", "gpu"], "--slurm-partition needs --executor slurm"),
        (["--executor", "slurm", "--workers", "2"], "--workers applies to --executor local"),
        (["--executor", "slurm", "--slurm-gpus-per-run", "2"], "invalid choice: 2"),
        (["--executor", "slurm", "--slurm-time-min", "0"], "expected an integer >= 1"),
        (["--executor", "slurm"], "needs Slurm's sbatch and srun on PATH"),
    ],
)
def test_bad_slurm_options_exit_2_and_write_nothing(tmp_path, capsys, monkeypatch, options,
                                                    message):
    monkeypatch.setattr(cli.shutil, "which", lambda command: None)  # no Slurm here
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main([*base.smoke("section3_2"), *options, "--out", str(out)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err and not out.exists()


def test_without_submitit_the_slurm_executor_says_how_to_install_it(tmp_path, capsys,
                                                                   monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "submitit" else find_spec(name, *rest))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main([*base.smoke("section3_2"), *LOCAL_JOBS, "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and not out.exists()
    assert "--executor slurm needs submitit: pip install -e '.[slurm]'" in err


class Interrupted(base.QuietBoard):
    def refresh(self, tasks):
        raise KeyboardInterrupt


def test_the_job_script_asks_for_the_options_and_ctrl_c_cancels_the_array(tmp_path,
                                                                          monkeypatch):
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.mkdir()
    stand_ins = {  # what Slurm's commands print
        "sbatch": f'cp "$1" {calls}/script.sh; echo "Submitted batch job 4242"',
        "srun": "exit 1",
        "sacct": 'echo "JobID|State|NodeList"',  # no job known yet: pending
        "scancel": f'echo "$@" > {calls}/scancel',
    }
    for command, body in stand_ins.items():
        (bin_dir / command).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / command).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    tasks = base._tasks(tmp_path / "out", 3)
    jobs = SlurmJobs(tmp_path / "jobs", name="monetk-section3_2", partition="gpu", gpus_per_run=1,
                     cpus_per_run=4, time_min=30, array_parallelism=2,
                     setup=["module load cuda/12"])
    with pytest.raises(KeyboardInterrupt):
        jobs.run(tasks, Interrupted())
    script = (calls / "script.sh").read_text()
    for line in ["#SBATCH --partition=gpu", "#SBATCH --time=30", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --array=0-2%2",
                 "#SBATCH --job-name=monetk-section3_2", "module load cuda/12",
                 "export MONETK_THREADS=4", "export OMP_NUM_THREADS=4",
                 f"export PYTHONPATH={base.ROOT}"]:
        assert line in script, line
    assert script.index("module load cuda/12") < script.index("export PYTHONPATH")
    assert (calls / "scancel").read_text().split() == ["4242"]


@pytest.mark.slow
def test_real_smoke_as_slurm_jobs_gives_the_results_csv_of_the_local_executor(tmp_path,
                                                                             monkeypatch):
    # monetk trains, on the CPU in both, with the torch threads per run that --workers auto
    # gives (the numbers depend on the device and the thread count)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    threads = str(cli.run_threads("auto"))
    args = [*base.smoke("section3_2"), "--seeds", "1"]
    local = base.run_cli(*args, "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr[-3000:]
    slurm = base.run_cli(*args, *LOCAL_JOBS, "--cpus-per-run", threads,
                         "--out", str(tmp_path / "slurm"))
    assert slurm.returncode == 0, slurm.stderr[-3000:]
    tables = [pd.read_csv(tmp_path / out / "section3_2" / "results.csv", keep_default_na=False)
              for out in ("local", "slurm")]
    assert list(tables[0]["status"]).count("ok") == 4
    pd.testing.assert_frame_equal(*(table.drop(columns="wall_time_s") for table in tables))
