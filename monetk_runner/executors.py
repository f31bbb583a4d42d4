"""Executors: train a list of runs in this process, in local worker processes, or on a Ray cluster
(one Slurm job per run: :mod:`monetk_runner.slurm`).

Each run is one call of :func:`execute` (in whichever process): it takes the run folder's lock,
skips a run another process finished meanwhile, calls ``run_experiment(config, run_dir, progress)``
(contract A; it resumes from the folder's checkpoint) and turns an exception into a failed
``result.json`` whose reason is the traceback's last line (the whole traceback: ``error.log``).

``local`` with ``--workers N`` runs N spawned processes; when GPUs are visible each worker gets one
(``CUDA_VISIBLE_DEVICES``, round robin, so N = 2 x GPUs packs two runs on each GPU:
``--runs-per-gpu``), otherwise each gets ``cpu_count // N`` torch threads (``OMP_NUM_THREADS``,
read by torch at import; also ``MONETK_THREADS``). Run ids do not depend on this:
``train.threads`` is not part of a run's identity.

``ray`` submits each run as a task with ``num_gpus=1`` (``num_gpus=0`` on a cluster without GPUs)
to the cluster at ``--ray-address`` (``auto``: the one this machine belongs to; none: a local Ray
started for this command). Workers write straight into ``OUT``, so every node must see ``OUT``,
the data files and the working directory at the same path (a shared file system); each task
changes to the driver's working directory first, so relative paths in specs (``data/...``)
resolve as on the driver, and imports monetk from the driver's checkout (``PYTHONPATH``). Each
task reserves ``--cpus-per-run`` CPUs and uses as many torch threads. How to start a cluster
(by hand, Slurm, Kubernetes): README, "Several GPUs, and Ray clusters".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing
import multiprocessing.util
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from monetk_runner.store import RESULT, atomic_write_json, atomic_write_text, read_result

LOCK = ".lock"
PROGRESS = "progress.json"
LOG = "log.txt"
ERROR_LOG = "error.log"
Train = Callable[..., dict]
#: ``progress(step, max_steps, **info)``; info: the epoch's loss and timing
#: (:data:`monetk.experiment.PROGRESS_INFO`), when the trainer reports them.
Progress = Callable[..., None]


@dataclass(frozen=True)
class Task:
    """One run to train: its config, its store folder, a label for messages, where to run it."""

    run_id: str
    config: dict
    run_dir: str
    label: str
    cwd: str


class Board(Protocol):
    """What an executor reports to (see :mod:`monetk_runner.progress`)."""

    def run_started(self, task: Task) -> Progress: ...

    def run_finished(self, task: Task, outcome: dict) -> None: ...

    def refresh(self, tasks: list[Task]) -> None: ...


def load_run_experiment() -> Train:
    """monetk's trainer (contract A), imported when first needed."""
    from monetk.experiment import run_experiment

    return run_experiment


def execute(
    task: Task,
    train: Train | None = None,
    progress: Progress | None = None,
    log_output: bool = False,
) -> dict:
    """Train ``task`` unless finished or busy; return its result record (contract A).

    ``log_output``: send the run's stdout and stderr to ``log.txt`` in its folder (for workers).
    A run whose lock another process holds is not touched: ``{"status": "busy"}``.
    """
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"status": "busy", "reason": "another process is training this run"}
        finished = read_result(run_dir)
        if finished is not None:
            return finished
        if os.path.isdir(task.cwd):
            os.chdir(task.cwd)
        train = train or load_run_experiment()
        reporter = ProgressFile(run_dir, progress)
        start = time.time()
        with _output_to(run_dir / LOG if log_output else None):
            try:
                result = train(task.config, str(run_dir), reporter)
            except Exception as error:
                return record_failure(run_dir, task, error, time.time() - start)
        if read_result(run_dir) is None:  # contract A says run_experiment wrote it; make sure
            atomic_write_json(run_dir / RESULT, result)
        return result


@contextlib.contextmanager
def _output_to(path: Path | None):
    if path is None:
        yield
        return
    with (
        open(path, "a", encoding="utf-8") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        yield


def record_failure(run_dir: Path, task: Task, error: BaseException, wall_time_s: float) -> dict:
    """Write and return a failed result for a run that raised ``error``."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    atomic_write_text(run_dir / ERROR_LOG, "".join(lines))
    record = {
        "status": "failed",
        "reason": traceback.format_exception_only(type(error), error)[-1].strip(),
        "steps": _progress_step(run_dir),
        "stop_step": None,
        "continued": bool(task.config["train"]["continue_after_stop"]),
        "final": None,
        "at_stop": None,
        "wall_time_s": wall_time_s,
        "device": None,
        "versions": None,
    }
    atomic_write_json(run_dir / RESULT, record)
    return record


def _progress_step(run_dir: Path) -> int | None:
    try:
        return json.loads((run_dir / PROGRESS).read_text(encoding="utf-8"))["step"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


class ProgressFile:
    """The ``progress`` callback of a run: forwards to ``callback`` and keeps ``progress.json`` up
    to date for boards in other processes, at most once a second and whenever the ``phase``
    changes: the last report (step, max_steps, time, when the run started, its info) and, under
    ``epoch``, the last epoch end's (step, time and timing: what an ETA is computed from)."""

    def __init__(self, run_dir: Path, callback: Progress | None = None, every_s: float = 1.0):
        self.path = run_dir / PROGRESS
        self.callback = callback
        self.every_s = every_s
        self.last = 0.0
        self.started = time.time()
        self.phase: str | None = None
        self.epoch: dict | None = None

    def __call__(self, step: int, max_steps: int, **info: float | str) -> None:
        if self.callback is not None:
            self.callback(step, max_steps, **info)
        now = time.time()
        if "epoch_time_s" in info:
            self.epoch = {"step": step, "time": now, **info}
        phase, self.phase = self.phase, info.get("phase")
        if now - self.last >= self.every_s or step >= max_steps or phase != self.phase:
            self.last = now
            atomic_write_json(self.path,
                              {"step": step, "max_steps": max_steps, "time": now,
                               "started": self.started, **info, "epoch": self.epoch})


def read_progress(run_dir: str | Path) -> dict | None:
    """A run's last ``progress.json``, or None."""
    try:
        return json.loads((Path(run_dir) / PROGRESS).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else those torch counts."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip() not in ("", "-1")]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def remote_environment(threads: int) -> dict[str, str]:
    """Environment variables of a run on another machine (a Ray task, a Slurm job): ``threads``
    torch CPU threads, and ``PYTHONPATH`` with this (shared) checkout first, so that it imports
    monetk and this package from the checkout the driver uses."""
    project = str(Path(__file__).resolve().parents[1])
    python_path = os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))
    return {"MONETK_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
            "PYTHONPATH": python_path}


class InProcess:
    """Train the runs one after another in this process (with ``threads`` torch CPU threads per
    run when given, else torch's default)."""

    def __init__(self, train: Train | None = None, threads: int | None = None):
        self.train = train
        self.threads = threads

    def run(self, tasks: list[Task], board: Board) -> dict[str, dict]:
        outcomes = {}
        before = os.environ.get("MONETK_THREADS")
        if self.threads is not None:
            os.environ["MONETK_THREADS"] = str(self.threads)
        try:
            for task in tasks:
                outcome = execute(task, self.train, board.run_started(task))
                board.run_finished(task, outcome)
                outcomes[task.run_id] = outcome
        finally:
            if before is None:
                os.environ.pop("MONETK_THREADS", None)
            else:
                os.environ["MONETK_THREADS"] = before
        return outcomes


def _start_worker(slots: Any, gpus: list[str], threads: int, runner_pid: int) -> None:
    """A worker process's start: leave Ctrl-C to the runner, which stops the workers (SIGTERM:
    the worker ends as :func:`_stop_worker` says), then :func:`_init_worker`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    _init_worker(slots, gpus, threads, runner_pid)


def _init_worker(slots: Any, gpus: list[str], threads: int, runner_pid: int) -> None:
    """Worker start: watch the runner; claim a slot; pin one GPU (round robin) or limit torch's
    CPU threads."""
    threading.Thread(target=_exit_with_runner, args=(runner_pid,), daemon=True).start()
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    else:
        for variable in ("MONETK_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(threads)


def _stop_worker(signum: int, frame: object) -> None:
    """SIGTERM in a worker: ``SystemExit``, which unwinds the run it trains (``finally`` blocks
    close its files; :func:`_work` then ends the process) or, between runs, ends the process as
    a process ends normally. Either way multiprocessing's exit handlers run, and they release the
    named semaphores the run's libraries made (tensorboardX's event queue has three): killed
    without them, a worker left them to the resource tracker, which warned of "leaked semaphore
    objects" after every Ctrl-C."""
    raise SystemExit(1)


def _work(task: Task, train: Train | None) -> dict:
    """A worker's task: :func:`execute` with the output to the run's log. Stopped in a run
    (:func:`_stop_worker`), the worker does not take another: it runs the exit handlers a
    process runs at its normal end (what ``multiprocessing.Process`` calls after its target;
    ``ProcessPoolExecutor`` would catch the ``SystemExit`` and go on) and exits."""
    try:
        return execute(task, train, None, True)
    except SystemExit:
        multiprocessing.util._exit_function()
        os._exit(1)


def _exit_with_runner(runner_pid: int, poll_s: float = 1.0, grace_s: float = 30.0) -> None:
    """End this worker once the runner process that started it is gone (killed with SIGTERM or
    SIGKILL, which its workers do not receive), so no orphan keeps training: stop it as the
    runner would (SIGTERM), and kill it if its run has not unwound within ``grace_s``. The run
    it was training resumes from its last checkpoint next time; every write is atomic."""
    while os.getppid() == runner_pid:
        time.sleep(poll_s)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_s)
    os._exit(1)


def stop_processes(processes: list[Any], grace_s: float = 30.0) -> None:
    """SIGTERM each of ``processes``, wait up to ``grace_s`` for all to end, kill the rest."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace_s
    try:
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
    finally:  # a second Ctrl-C while waiting ends the wait
        for process in processes:
            if process.is_alive():
                process.kill()


class WorkerProcesses:
    """Train the runs in ``workers`` spawned processes (one GPU each when GPUs are visible, else
    ``threads`` torch CPU threads each; default ``cpu_count // workers``)."""

    def __init__(self, workers: int, train: Train | None = None, gpus: list[str] | None = None,
                 threads: int | None = None):
        self.workers = workers
        self.train = train
        self.gpus = visible_gpus() if gpus is None else gpus
        self.threads = threads

    def run(self, tasks: list[Task], board: Board) -> dict[str, dict]:
        context = multiprocessing.get_context("spawn")
        slots = context.Queue()
        for slot in range(self.workers):
            slots.put(slot)
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.workers)
        outcomes: dict[str, dict] = {}
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(slots, self.gpus, threads, os.getpid()),
        )
        try:
            pending = {pool.submit(_work, task, self.train): task for task in tasks}
            while pending:
                done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool as error:
                        outcome = {
                            "status": "interrupted",
                            "reason": f"worker process died: {error}",
                        }
                    board.run_finished(task, outcome)
                    outcomes[task.run_id] = outcome
                board.refresh(list(pending.values()))
        except BaseException:  # Ctrl-C or an error here: stop the workers, do not wait for runs
            processes = list(pool._processes.values())  # no public API stops running tasks
            pool.shutdown(wait=False, cancel_futures=True)
            stop_processes(processes)
            raise
        finally:
            slots.close()
            slots.join_thread()
        pool.shutdown()
        return outcomes


class RayCluster:
    """Train each run as a Ray task on an existing cluster (``address``) or a local one; on GPUs
    each run reserves ``1 / runs_per_gpu`` of one (Ray's fractional GPUs)."""

    def __init__(self, address: str | None, cpus_per_run: int = 1, train: Train | None = None,
                 runs_per_gpu: int = 1):
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.train = train
        self.runs_per_gpu = runs_per_gpu

    def run(self, tasks: list[Task], board: Board) -> dict[str, dict]:
        import ray  # the optional extra: pip install '.[ray]' (the CLI checks it is there)

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        try:
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            gpus = 1 / self.runs_per_gpu if has_gpus else 0
            env = remote_environment(self.cpus_per_run)
            remote = ray.remote(execute).options(
                num_gpus=gpus, num_cpus=self.cpus_per_run, runtime_env={"env_vars": env}
            )
            pending = {remote.remote(task, self.train, None, True): task for task in tasks}
            outcomes: dict[str, dict] = {}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in done:
                    task = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as error:  # the task's process died (e.g. killed for memory)
                        outcome = record_failure(Path(task.run_dir), task, error, 0.0)
                    board.run_finished(task, outcome)
                    outcomes[task.run_id] = outcome
                board.refresh(list(pending.values()))
            return outcomes
        finally:
            if started_here:
                ray.shutdown()
