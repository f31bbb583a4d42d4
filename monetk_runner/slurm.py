"""The ``slurm`` executor: one Slurm job per run, submitted as one job array with submitit.

Each job calls :func:`monetk_runner.executors.execute`, as every executor does: it takes the run
folder's lock, skips a run that is finished, resumes from the run's checkpoint and records a
failure. Jobs write straight into ``OUT``, so the compute nodes must see ``OUT``, the data files,
the checkout and the driver's working directory at the same paths (a shared file system); each job
imports monetk from the driver's checkout (``PYTHONPATH``), runs with ``cpus_per_run`` torch
threads and changes to the driver's working directory. submitit's folder holds each job's script,
pickles and logs (``<job id>_0_log.out`` / ``.err``).

A job that reaches its time limit is requeued by submitit (the job is a
:class:`submitit.helpers.Checkpointable`) and resumes from the run's last checkpoint, at most 3
times (submitit's ``max_num_timeout``; then the run is recorded as failed); a job that ends without
a result (cancelled, preempted without requeue, killed on its node) leaves its run resumable: the
next invocation trains it on from its checkpoint. Ctrl-C or SIGTERM of the runner cancels the jobs
still queued or running.

``cluster="local"`` runs the jobs as processes on this machine with submitit's local executor
(for tests: no partition, no array limit).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import submitit
from submitit.helpers import Checkpointable

from monetk_runner.executors import Board, Task, Train, execute, remote_environment
from monetk_runner.store import read_result


class RunJob(Checkpointable):
    """What a job runs: :func:`execute` of one task. Requeued with the same task (submitit's
    ``checkpoint``), it resumes the run from its folder's checkpoint."""

    def __init__(self, train: Train | None = None):
        self.train = train

    def __call__(self, task: Task) -> dict:
        return execute(task, self.train, None, True)


class SlurmJobs:
    """Train each run as a job of one Slurm job array (``cluster="local"``: as processes on this
    machine, submitit's local executor)."""

    #: Seconds between two looks at the jobs' states.
    poll_s = 5.0

    def __init__(
        self,
        folder: str | Path,
        *,
        name: str = "monetk",
        partition: str | None = None,
        gpus_per_run: int = 1,
        cpus_per_run: int = 1,
        time_min: int = 240,
        array_parallelism: int = 256,
        setup: Sequence[str] = (),
        cluster: str = "slurm",
        train: Train | None = None,
    ):
        self.cluster = cluster
        self.train = train
        exports = [f"export {key}={shlex.quote(value)}"
                   for key, value in remote_environment(cpus_per_run).items()]
        self.executor = submitit.AutoExecutor(folder, cluster=cluster)
        self.executor.update_parameters(
            name=name,
            timeout_min=time_min,
            cpus_per_task=cpus_per_run,
            gpus_per_node=gpus_per_run or None,  # no --gpus-per-node=0 line
            slurm_partition=partition,
            slurm_array_parallelism=array_parallelism,
            **{f"{cluster}_setup": [*setup, *exports]},
        )

    @property
    def folder(self) -> Path:
        """submitit's folder: job scripts, pickles, logs."""
        return Path(self.executor.folder)

    def run(self, tasks: list[Task], board: Board) -> dict[str, dict]:
        jobs = self.executor.map_array(RunJob(self.train), tasks)
        pending = dict(zip(jobs, tasks, strict=True))
        outcomes: dict[str, dict] = {}
        try:
            while pending:
                for job in [job for job in pending if job.done()]:
                    task = pending.pop(job)
                    outcome = _outcome(job, task)
                    board.run_finished(task, outcome)
                    outcomes[task.run_id] = outcome
                board.refresh(list(pending.values()))
                if pending:
                    time.sleep(self.poll_s)
        except BaseException:  # Ctrl-C, SIGTERM or an error here: stop the jobs left
            self._cancel(list(pending))
            raise
        return outcomes

    def _cancel(self, jobs: list[submitit.Job]) -> None:
        if not jobs:
            return
        if self.cluster == "slurm":  # one scancel: an array's id stands for its tasks
            subprocess.call(["scancel", *sorted({job.job_id.split("_")[0] for job in jobs})])
        else:
            for job in jobs:
                job.cancel(check=False)


def _outcome(job: submitit.Job, task: Task) -> dict:
    """The result record a finished job returned; for a job that ended without one, the run's
    ``result.json`` if it wrote one, else an ``interrupted`` record (the run stays resumable)."""
    try:
        return job.result()
    except Exception:  # the job was killed, cancelled or failed outside the run's training
        finished = read_result(Path(task.run_dir))
        if finished is not None:
            return finished
        return {
            "status": "interrupted",
            "reason": f"job {job.job_id} ended without a result ({job.state}); "
            f"its log: {job.paths.stderr}",
        }
