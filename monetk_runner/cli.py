"""``python runner.py SPEC [options]``: check a spec, train its runs, collect results.csv, report.

Exit status: 0 every run ok, 1 a run failed (or the report could not be written), 2 the spec, the
command line or a data file is invalid (then nothing is written), 3 incomplete: another runner on
the same --out still trains some of the runs, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from monetk_runner.collect import results_table, write_results
from monetk_runner.datafiles import data_files, data_problems, describe
from monetk_runner.executors import (
    InProcess,
    RayCluster,
    Task,
    Train,
    WorkerProcesses,
    visible_gpus,
)
from monetk_runner.expand import MAX_RUNS, load_runs, select
from monetk_runner.extend import Twins
from monetk_runner.folder import Made, changed, conflict, record, recorded
from monetk_runner.plan import UNFINISHED, Planned, plan, summary, table, to_train
from monetk_runner.progress import RunBoard
from monetk_runner.spec import Spec, SpecError
from monetk_runner.store import RESULT, RunStore, atomic_write_text
from monetk_runner.warning_summary import collapse_warnings
from monetk_runner.waves import forecast_runs, is_sequential, needed_runs

Report = Callable[..., object]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner.py",
        description="Expand an experiment spec into runs, train them (resumable), collect "
        "OUT/<spec>/results.csv and write OUT/<spec>/report/.",
    )
    parser.add_argument("spec", help="spec YAML file, e.g. specs/section3_2.yaml")
    parser.add_argument("--profile", help="scale preset from the spec's profiles (default: paper)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a spec value, typed as YAML (repeatable), "
        "e.g. --set defaults.train.max_steps=100",
    )
    parser.add_argument("--seeds", help="train only these seeds, e.g. 1-5 or 1,3,7")
    parser.add_argument("--datasets", help="train only these datasets (comma-separated)")
    parser.add_argument("--conditions", help="train only these conditions (comma-separated)")
    parser.add_argument("--out", default="runs", help="output folder (default: runs/)")
    parser.add_argument(
        "--max-runs",
        type=_positive,
        default=MAX_RUNS,
        help=f"refuse a spec that expands to more runs than this (default {MAX_RUNS:,})",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="print the runs and their states as a table; write nothing",
    )
    mode.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: collect results.csv and write the report",
    )
    mode.add_argument(
        "--masks",
        action="store_true",
        help="draw the attention masks (input, reconstruction, each slot, ground truth) of the "
        "finished runs chosen by --datasets, --conditions and --seeds into OUT/<spec>/masks/ "
        "as PNG and PDF; train nothing",
    )
    mode.add_argument(
        "--estimate",
        action="store_true",
        help="print the runs left, a step's time on this machine (from finished runs, else a "
        "short timing probe) and the projected wall time and device-hours on the workers; "
        "train and write nothing",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="train runs recorded as failed again (from their checkpoint)",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "ray", "slurm"),
        default="local",
        help="local: this machine (default); ray: a Ray cluster; slurm: one Slurm job per run",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        help="local executor: parallel worker processes, each with one GPU if any, else "
        "cpu_count/N torch threads (default auto: one per visible GPU; on a CPU one per core, "
        f"at most {MAX_AUTO_CPU_WORKERS})",
    )
    parser.add_argument(
        "--runs-per-gpu",
        type=_positive,
        default=1,
        help="local and ray executors: runs that share one GPU (default 1); with --workers auto "
        "the local executor starts this many workers per visible GPU, Ray gives each run "
        "1/N of a GPU",
    )
    parser.add_argument(
        "--ray-address",
        help="ray executor: cluster address ('auto': the "
        "cluster of this machine; default: start a local Ray)",
    )
    parser.add_argument(
        "--cpus-per-run",
        type=_positive,
        default=1,
        help="ray and slurm executors: CPUs reserved (and torch threads) per run",
    )
    slurm = parser.add_argument_group("--executor slurm (submitit; README, \"Slurm\")")
    slurm.add_argument(
        "--slurm-partition", metavar="NAME", help="partition (default: the cluster's default)"
    )
    slurm.add_argument(
        "--slurm-gpus-per-run",
        type=int,
        choices=(0, 1),
        default=1,
        help="GPUs per job: 1 (default), or 0 on a CPU partition",
    )
    slurm.add_argument(
        "--slurm-time-min",
        type=_positive,
        default=240,
        metavar="MINUTES",
        help="time limit of a job in minutes (default 240); a job that reaches it is requeued "
        "and resumes from the run's checkpoint, at most 3 times",
    )
    slurm.add_argument(
        "--slurm-array-parallelism",
        type=_positive,
        default=256,
        metavar="N",
        help="at most this many jobs of the job array run at once (default 256)",
    )
    slurm.add_argument(
        "--slurm-setup",
        action="append",
        default=[],
        metavar="LINE",
        help="a shell line each job runs before Python, e.g. 'module load cuda' (repeatable)",
    )
    slurm.add_argument(
        "--slurm-folder",
        metavar="DIR",
        help="submitit's folder: job scripts and logs (default: OUT/<spec>/slurm)",
    )
    # Tests: submitit's local executor runs the jobs as processes on this machine.
    slurm.add_argument(
        "--slurm-cluster", choices=("slurm", "local"), default="slurm", help=argparse.SUPPRESS
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


#: ``--workers auto`` on a machine without GPUs: one single-threaded run per core, at most this
#: many (small MONets scale poorly over threads; parallel runs use the cores fully).
MAX_AUTO_CPU_WORKERS = 8


def _workers(text: str) -> int | str:
    return text if text == "auto" else _positive(text)


def auto_workers(tasks: int, runs_per_gpu: int = 1) -> int:
    """Workers for ``--workers auto``: ``runs_per_gpu`` per visible GPU, else one per CPU core
    (capped), and never more than there are runs to train."""
    gpus = len(visible_gpus())
    wanted = gpus * runs_per_gpu or min(os.cpu_count() or 1, MAX_AUTO_CPU_WORKERS)
    return max(1, min(wanted, tasks))


def parallel_slots(args: argparse.Namespace, tasks: int) -> int:
    """How many of ``tasks`` runs train at once: for Slurm the job array's parallelism, else
    ``--workers`` (``auto``: :func:`auto_workers`, which also stands for a Ray cluster, whose
    size is not known before it is joined)."""
    if args.executor == "slurm":
        return max(1, min(args.slurm_array_parallelism, tasks))
    return auto_workers(tasks, args.runs_per_gpu) if args.workers == "auto" else args.workers


def run_threads(workers: int | str) -> int:
    """torch CPU threads per run: ``cpu_count // N`` for ``--workers N``; for ``auto``, the
    share of one of the workers a full machine would get, however many runs are left, so a
    resumed sweep trains every run with the threads it started with (1 and 2 threads give
    different numbers)."""
    cores = os.cpu_count() or 1
    if workers == "auto":
        workers = min(cores, MAX_AUTO_CPU_WORKERS)
    return max(1, cores // workers)


@collapse_warnings()
def main(
    argv: Sequence[str] | None = None, train: Train | None = None, report: Report | None = None
) -> int:
    """Run the command line ``argv``; ``train`` and ``report`` replace monetk's trainer and the
    analysis package's ``write_report`` (tests)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.executor != "local" and args.workers not in ("auto", 1):
        parser.error("--workers applies to --executor local; Ray and Slurm schedule runs by "
                     "their resources")
    if args.executor != "ray" and args.ray_address:
        parser.error("--ray-address needs --executor ray")
    if args.executor == "ray" and importlib.util.find_spec("ray") is None:
        parser.error("--executor ray needs Ray: pip install '.[ray]'")
    slurm_options = [name for name, value in vars(args).items()
                     if name.startswith("slurm_") and value != parser.get_default(name)]
    if args.executor != "slurm" and slurm_options:
        parser.error(f"--{slurm_options[0].replace('_', '-')} needs --executor slurm")
    if args.executor == "slurm" and args.runs_per_gpu != 1:
        parser.error("--runs-per-gpu applies to --executor local and ray (a Slurm job trains "
                     "one run)")
    if args.executor == "slurm" and importlib.util.find_spec("submitit") is None:
        parser.error("--executor slurm needs submitit: pip install -e '.[slurm]'")
    if args.executor == "slurm" and args.slurm_cluster == "slurm" and not all(
            map(shutil.which, ("sbatch", "srun"))):
        parser.error("--executor slurm needs Slurm's sbatch and srun on PATH (a login node)")
    try:
        spec, runs = load_runs(args.spec, args.profile, args.sets, args.max_runs)
        selected = select(runs, spec, args.seeds, args.datasets, args.conditions)
    except SpecError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(
            f"{len(error.problems)} problem(s) in the spec; nothing was run or written.",
            file=sys.stderr,
        )
        return 2
    store = RunStore(args.out)
    print(f"{spec.name}: {spec.content.get('title', '')} (profile: {spec.profile or 'none'})")
    if args.dry_run:
        print(table(plan(spec.name, needed_runs(spec, selected, store), store)))
        return _dry_run_data(selected, args.spec, spec)
    if args.estimate:
        return _estimate(spec, runs, selected, store, args)
    if args.masks:
        from monetk_runner.masks import masks_command  # matplotlib, for this option only

        return masks_command(spec, selected, store, Made.of(args.spec, spec.profile, args.sets))
    problem = _out_problem(Path(args.out))
    if problem is not None:
        print(f"--out: {problem}; nothing was run or written.", file=sys.stderr)
        return 2
    spec_dir = store.out / spec.name
    made, before = Made.of(args.spec, spec.profile, args.sets), recorded(spec_dir)
    if (before is not None and args.report_only and not args.sets
            and args.profile in (None, before.profile) and before.spec_file == made.spec_file
            and before != made):
        spec, runs = load_runs(args.spec, before.profile, list(before.sets), args.max_runs)
        selected = select(runs, spec, args.seeds, args.datasets, args.conditions)
        made = before
        print(f"--report-only: the folder's profile and overrides ({before.describe()})")
    problem = None if before is None else conflict(spec_dir, before, made, args.report_only)
    if problem is not None:
        print(f"{problem}; nothing was run or written.", file=sys.stderr)
        return 2
    notice = None if before is None else changed(spec_dir, before, made)
    if notice is not None:
        print(notice, file=sys.stderr)
    if not args.report_only:
        problems = data_problems(data_files(selected), args.spec, spec)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            print("The data files cannot be read; nothing was run or written.", file=sys.stderr)
            return 2
    atomic_write_text(spec_dir / "spec.yaml", _snapshot(spec, argv))
    record(spec_dir, made)
    failed = busy = 0
    if not args.report_only:
        on_sigterm = signal.signal(signal.SIGTERM, _interrupt)
        try:
            train_all = _train_waves if is_sequential(spec) else _train
            failed, busy = train_all(spec, selected, store, args, train)
        except KeyboardInterrupt:
            print("Interrupted; run the same command again to resume.", file=sys.stderr)
            return 130
        finally:
            signal.signal(signal.SIGTERM, on_sigterm)
    planned = plan(spec.name, needed_runs(spec, runs, store), store)
    for p in planned:
        if p.state != "todo":
            store.link_view(spec.name, p.run, p.found.run_id)
        else:
            store.drop_stale_view(spec.name, p.run, p.found.run_id)
    results = results_table(spec, planned, spec_dir, selected)
    write_results(results, spec_dir / "results.csv")
    print(f"Results: {spec_dir / 'results.csv'} ({_counts(results)})")
    failed = max(failed, int((results["status"] == "failed").sum()))
    try:
        (report or _write_report)(
            {**spec.as_dict(), "command": _command(argv), "overrides": list(made.sets)},
            results, spec_dir / "report", results_dir=spec_dir,
        )
    except Exception as error:  # the results are written; say why the report is not
        print(f"Report failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"Report: {spec_dir / 'report'}")
    if busy:
        print(f"Incomplete: {busy} run(s) are being trained by another runner on this --out; "
              "results.csv and the report list them as missing. Run the same command again "
              "when that runner has finished.", file=sys.stderr)
        return 3
    return 1 if failed else 0


def _estimate(spec: Spec, runs: list, selected: list, store: RunStore,
              args: argparse.Namespace) -> int:
    """``--estimate`` (:mod:`monetk_runner.estimate`): trains and writes nothing."""
    from monetk import probe  # keras and torch, for this option only
    from monetk_runner.estimate import estimate, format_estimate
    from monetk_runner.probes import ProbeLog

    timed = ProbeLog()

    planned = plan(spec.name, selected, store)
    states = (*UNFINISHED, "failed") if args.retry_failed else UNFINISHED
    workers = parallel_slots(args, len(to_train(planned, states)))
    threads = run_threads(args.workers) if args.executor == "local" else args.cpus_per_run
    needed = forecast = None
    if is_sequential(spec):  # the runs the design needs so far, and by its end (forecast)
        needed = _trains(needed_runs(spec, selected, store))
        continuations = forecast_runs(spec, selected, store)
        forecast = None if continuations is None else [_trains(c) for c in continuations]
    print(format_estimate(estimate(planned, store, workers, timed, probe.machine(), threads,
                                   states, observed=plan(spec.name, runs, store),
                                   sequential_needed=needed, sequential_forecast=forecast,
                                   on_probes=timed.announce)))
    return 0


def _dry_run_data(selected: list, spec_arg: str, spec: Spec) -> int:
    """``--dry-run``'s data lines: each dataset's file state; 2 if a run could not start."""
    files = data_files(selected)
    print("\n".join(describe(files)))
    problems = data_problems(files, spec_arg, spec)
    if not problems:
        return 0
    blocked = sum(f.runs for f in files if f.problem)
    print("\n".join(problems), file=sys.stderr)
    print(f"{blocked} of the {len(selected)} selected runs could not start: their data files "
          "cannot be read (nothing was written).", file=sys.stderr)
    return 2


def _trains(runs: list) -> Callable[[Planned], bool]:
    """Whether a planned run is one of ``runs``."""
    keys = {(r.dataset, r.condition, r.seed) for r in runs}
    return lambda p: (p.run.dataset, p.run.condition, p.run.seed) in keys


def _out_problem(out: Path) -> str | None:
    """Why ``out`` cannot hold the outputs (a file, or a folder this process cannot write), or
    None; a missing folder is judged by its nearest existing parent."""
    if out.exists() and not out.is_dir():
        return f"{out} is a file, not a folder"
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{out} is not writable" if existing == out else (
            f"{out} cannot be created: {existing} is not writable")
    return None


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's or ``kill``'s stop) ends training like Ctrl-C: workers stopped,
    finished runs kept, unfinished ones resumable."""
    raise KeyboardInterrupt


def _train(
    spec: Spec, selected: list, store: RunStore, args: argparse.Namespace, train: Train | None
) -> tuple[int, int]:
    """Train the selected runs that are not finished; return how many failed and how many were
    left to another runner that holds their lock."""
    planned = plan(spec.name, selected, store)
    if args.retry_failed:
        for run_id in {p.found.run_id for p in planned if p.state == "failed"}:
            (store.run_dir(run_id) / RESULT).unlink()
        planned = plan(spec.name, selected, store)
    print(summary(planned))
    twins = Twins(store)
    for p in planned:
        store.link_view(spec.name, p.run, p.found.run_id)
        if p.state == "todo":
            started = twins.start(p.found.run_id, p.run.config)
            if started is not None:
                print(started)
    tasks = _tasks(planned, store)
    if not tasks:
        print(f"All {len(planned)} selected runs are complete; nothing to train.")
        return 0, 0
    workers = parallel_slots(args, len(tasks))
    if args.executor == "ray":
        print(f"Training {len(tasks)} run(s) on the Ray cluster.")
        executor = RayCluster(args.ray_address, args.cpus_per_run, train, args.runs_per_gpu)
    elif args.executor == "slurm":
        from monetk_runner.slurm import SlurmJobs  # submitit: the optional extra (checked in main)

        executor = SlurmJobs(
            args.slurm_folder or store.out / spec.name / "slurm",
            name=f"monetk-{spec.name}",
            partition=args.slurm_partition,
            gpus_per_run=args.slurm_gpus_per_run,
            cpus_per_run=args.cpus_per_run,
            time_min=args.slurm_time_min,
            array_parallelism=args.slurm_array_parallelism,
            setup=args.slurm_setup,
            cluster=args.slurm_cluster,
            train=train,
        )
        print(f"Training {len(tasks)} run(s) as Slurm jobs; submitit's folder (job logs): "
              f"{executor.folder}")
    elif workers > 1:
        print(f"Training {len(tasks)} run(s) in {workers} worker processes.")
        executor = WorkerProcesses(workers, train, threads=run_threads(args.workers))
    else:
        print(f"Training {len(tasks)} run(s) in this process.")
        executor = InProcess(train, run_threads(args.workers))
    board = RunBoard(tasks, workers)
    try:
        outcomes = executor.run(tasks, board)
    finally:
        board.close()
    statuses = [outcome.get("status") for outcome in outcomes.values()]
    return sum(s not in ("ok", "busy") for s in statuses), statuses.count("busy")


def _train_waves(
    spec: Spec, selected: list, store: RunStore, args: argparse.Namespace, train: Train | None
) -> tuple[int, int]:
    """Train the sequential design's waves: the runs it needs, then look again, until it needs
    no unfinished run (every listed test decided, or ``max_seeds`` reached)."""
    failed = 0
    while True:
        needed = needed_runs(spec, selected, store)
        todo = sum(p.state in ("todo", "partial") for p in plan(spec.name, needed, store))
        if not todo:
            return failed, 0
        seeds = len({run.seed for run in needed})
        print(f"Sequential design: {len(needed)} run(s) of up to {seeds} seed(s) needed now, "
              f"{todo} to train.")
        wave_failed, busy = _train(spec, needed, store, args, train)
        failed += wave_failed
        if busy:  # another runner trains some: the design can only look once they finish
            return failed, busy
        args = argparse.Namespace(**{**vars(args), "retry_failed": False})  # retried once


def _tasks(planned: list[Planned], store: RunStore) -> list[Task]:
    """One task per distinct unfinished store folder, in training order (:func:`to_train`)."""
    cwd = str(Path.cwd())
    return [Task(p.found.run_id, p.run.config, str(store.run_dir(p.found.run_id)), p.run.label,
                 cwd) for p in to_train(planned)]


def _counts(results) -> str:
    counts = results["status"].value_counts()
    shown = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "failed", "missing"))
    return shown + (f", {counts['not selected']} not selected" if "not selected" in counts
                    else "")


def _command(argv: Sequence[str] | None) -> str:
    return shlex.join(["python", "runner.py", *(sys.argv[1:] if argv is None else argv)])


def _snapshot(spec: Spec, argv: Sequence[str] | None) -> str:
    return f"# {_command(argv)}\n" + yaml.safe_dump(spec.as_dict(), sort_keys=False)


def _write_report(spec: dict, results, report_dir: Path, results_dir: Path) -> object:
    from analysis import write_report

    return write_report(spec, results, report_dir, results_dir=results_dir)
