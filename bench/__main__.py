"""``python -m bench``: run the benchmarks, print a table, write JSON under ``bench/results/``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"
SECTIONS = ("train", "data", "eval")
CASE_NAMES = ("host-b1", "demo-b8", "default-b4", "default-b64")
PRECISIONS = ("fp32", "bf16")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="monetk benchmarks: training step (monetk fit vs plain-PyTorch twin vs "
                    "monet-pytorch), data pipeline and evaluation. Prints a table, writes JSON.")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--cases", default=",".join(CASE_NAMES),
                        help=f"training-step cases, comma-separated subset of "
                             f"{', '.join(CASE_NAMES)} (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="a short check of the harness: the demo model, few steps, no "
                             "torch.compile, small data and evaluation sets")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the torch.compile variants (25-75 s of compilation each)")
    parser.add_argument("--no-peer", action="store_true", help="skip monet-pytorch")
    parser.add_argument("--precision", default=None,
                        help="comma-separated subset of fp32, bf16 (bf16 autocast needs CUDA; "
                             "default: fp32 on the CPU, fp32,bf16 on CUDA)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--eval-images", type=int, default=1000,
                        help="held-out images for the evaluation timing (default: 1000)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output path (default: bench/results/<date>-<host>.json)")
    args = parser.parse_args(argv)
    args.sections = _choices(parser, "--sections", args.sections, SECTIONS)
    args.cases = _choices(parser, "--cases", args.cases, CASE_NAMES)
    if args.precision is not None:
        args.precision = _choices(parser, "--precision", args.precision, PRECISIONS)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads: must be >= 1, got {args.threads}")
    if args.eval_images < 1:
        parser.error(f"--eval-images: must be >= 1, got {args.eval_images}")
    return args


def _choices(parser: argparse.ArgumentParser, flag: str, value: str,
             allowed: Sequence[str]) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in chosen if v not in allowed]
    if bad or not chosen:
        parser.error(f"{flag}: {', '.join(bad) or 'nothing'} not allowed; "
                     f"choose from {', '.join(allowed)}")
    return chosen


def machine() -> dict[str, Any]:
    """The machine and software the numbers come from."""
    import keras
    import numpy as np
    import torch

    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    try:
        from importlib.metadata import version

        peer_version = version("monet-pytorch")
    except Exception:  # not installed
        peer_version = None
    return {"host": socket.gethostname(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "monet_pytorch": peer_version, "load_average_start": os.getloadavg()}


def pair_ratio(table: dict[str, dict], numerator: str, denominator: str) -> float | None:
    """Median over rounds of the ratio of two variants' round times (None if one is absent)."""
    if numerator not in table or denominator not in table:
        return None
    return statistics.median(a / b for a, b in zip(table[numerator]["round_ms"],
                                                    table[denominator]["round_ms"], strict=True))


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 6 with its measured value and whether it is met (None: not measured)."""
    rows = []

    def add(name: str, value: float | None, limit: float, smaller_is_better: bool = True):
        met = None if value is None else (value <= limit if smaller_is_better else value >= limit)
        rows.append({"target": name, "value": value, "limit": limit, "met": met})

    for key, case in results.get("train", {}).items():
        table = case["variants"]
        compiled = "monetk fit compiled" in table
        if key.startswith(("demo-b8", "default-b64")):
            add(f"{key}: monetk compiled / twin eager <= 0.80",
                pair_ratio(table, "monetk fit compiled", "twin eager"), 0.80)
        add(f"{key}: monetk compiled / twin compiled <= 1.10",
            pair_ratio(table, "monetk fit compiled", "twin compiled"), 1.10)
        add(f"{key}: monetk eager / twin eager <= 1.15",
            pair_ratio(table, "monetk fit eager", "twin eager"), 1.15)
        best = "monetk fit compiled" if compiled else "monetk fit eager"
        add(f"{key}: {best} / monet-pytorch (closest config) <= 1.00",
            pair_ratio(table, best, "monet-pytorch (closest config)"), 1.00)
    data, train = results.get("data"), results.get("train")
    if data and train:
        consumed = max(case["batch_size"] / (1e-3 * min(
            v["ms"] for name, v in case["variants"].items() if name.startswith("monetk")))
            for case in train.values())
        delivered = min(data["cache_to_fit_images_per_s"], data["memory_to_fit_images_per_s"])
        add("data pipeline images/s / fastest training images/s >= 20", delivered / consumed, 20,
            smaller_is_better=False)
    for dataset in ("multi_dsprites", "objects_room"):
        rate = (data or {}).get(f"tfrecord_{dataset}_to_cache_records_per_s")
        if rate:
            add(f"TFRecord {dataset} -> cache: minutes per 1M records <= 15", 1e6 / rate / 60, 15)
    if "eval" in results:
        add(f"segmentation_scores on {results['eval']['num_images']} images < 1 s",
            results["eval"]["segmentation_scores_s"], 1.0)
    return rows


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(results: dict[str, Any]) -> None:
    """The human-readable table of ``results``."""
    m = results["machine"]
    print(f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, "
          f"gpu {m['gpu']}; torch {m['torch']}, keras {m['keras']}; load average "
          f"{m['load_average_start'][0]:.2f} -> {m['load_average_end'][0]:.2f}")
    for key, case in results.get("train", {}).items():
        print(f"\n== training step {key}: {case['image_size']} px, K={case['num_slots']}, "
              f"batch {case['batch_size']}; {case['rounds']} rounds x {case['steps']} steps "
              f"(first {case['warmup']} dropped); parameters {case['parameters']}")
        print(f"{'variant':38s} {'ms/step':>9s} {'vs twin eager':>14s} {'range':>13s} "
              f"{'img/s':>8s} {'priming s':>9s}")
        for name, row in case["variants"].items():
            rate = case["batch_size"] / (1e-3 * row["ms"])
            print(f"{name:38s} {row['ms']:9.1f} {row['ratio']:14.2f} "
                  f"{row['ratio_min']:6.2f}-{row['ratio_max']:<6.2f} {rate:8.1f} "
                  f"{case['priming_s'].get(name, float('nan')):9.1f}")
        print(f"graphs compiled while timing (recompiles): {case['graphs_compiled_while_timing']}")
        print(f"{'profile (ms, eager)':38s} " + " ".join(f"{h:>9s}" for h in _PHASES.values()))
        for name, phases in case["profile"].items():
            print(f"{name:38s} " + " ".join(f"{phases[p]:9.1f}" for p in _PHASES))
    if "data" in results:
        print("\n== data pipeline")
        for name, value in results["data"].items():
            print(f"{name:46s} {value:10.0f}")
    if "eval" in results:
        e = results["eval"]
        print(f"\n== evaluation on {e['num_images']} images ({e['image_size']} px, "
              f"K={e['num_slots']}): segmentation_scores {e['segmentation_scores_s']:.3f} s, "
              f"decompose forward {e['decompose_s']:.1f} s")
    print("\n== targets")
    for row in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
        print(f"{row['target']:64s} {_fmt(row['value'], '.3f'):>8s}  {verdict}")
    for what, why in results.get("skipped", {}).items():
        print(f"skipped {what}: {why}")


#: Profile phases and their column headers.
_PHASES = {"attention_fwd": "attn fwd", "attention_fwd_per_pass": "per pass",
           "vae_fwd": "vae fwd", "vae_fwd_per_component": "per comp", "loss_fwd": "loss",
           "backward_and_rest": "bwd+rest", "optimizer": "optim", "step": "step"}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen sections; return the results (also written to ``args.out``)."""
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from bench import data_eval, train_step
    from monetk.model import MONet

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    precisions = args.precision or (["fp32", "bf16"] if cuda else ["fp32"])
    results: dict[str, Any] = {"machine": machine(), "command": _command(),
                               "date": datetime.datetime.now().isoformat(timespec="seconds"),
                               "skipped": {}}
    started = time.perf_counter()
    if "train" in args.sections:
        cases = ([train_step.QUICK_CASE] if args.quick
                 else [train_step.CASES[name] for name in args.cases])
        if cuda:  # GPU steps take milliseconds: many steps per round, whatever the CPU sizes
            cases = [dataclasses.replace(case, rounds=3, steps=max(case.steps, 20),
                                         warmup=max(case.warmup, 2),
                                         prime_steps=max(case.prime_steps, 3),
                                         prime_eager=True, diagnostics=True)
                     for case in cases]
        results["train"] = {}
        for case in cases:
            for precision in precisions:
                if precision == "bf16" and not cuda:
                    results["skipped"]["bf16"] = "bf16 mixed precision is measured on CUDA only"
                    continue
                settings = train_step.Settings(
                    compile=not (args.no_compile or args.quick), peer=not args.no_peer,
                    mixed_precision=precision == "bf16", device=device,
                    profile_steps=1 if case.batch_size >= 64 and not cuda else 3)
                key = case.name if precision == "fp32" else f"{case.name}-{precision}"
                print(f"training step {key} ...", file=sys.stderr, flush=True)
                results["train"][key] = train_step.measure_case(case, settings)
                results["skipped"].update(settings.skipped)
    if "data" in args.sections:
        print("data pipeline ...", file=sys.stderr, flush=True)
        size = dict(image_size=32, num_images=1024, steps=10, num_records=300) if args.quick \
            else {}
        results["data"] = data_eval.measure_data(**size)
    if "eval" in args.sections:
        print("evaluation ...", file=sys.stderr, flush=True)
        model = MONet(image_size=32, **train_step.DEMO_MODEL) if args.quick else MONet()
        results["eval"] = data_eval.measure_eval(model, args.eval_images)
    results["machine"]["load_average_end"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - started
    results["targets"] = targets(results)
    return results


def _command() -> str:
    return "python -m bench " + " ".join(sys.argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print_report(results)
    out = args.out or RESULTS_DIR / (f"{datetime.date.today().isoformat()}-"
                                     f"{results['machine']['host']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {out} ({results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
