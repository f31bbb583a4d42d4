"""Expand a spec into runs (dataset x condition x seed), each with its fully resolved run config.

Resolved run config = deep-merge(monetk defaults, spec.defaults, datasets[d], conditions[c], seed),
with ``per_dataset`` leaves picked for ``d`` and ``train.continue_after_stop`` true for the spec's
``continue_seeds``. Each config is checked with :func:`monetk.config.resolve`; its problems are
reported at the spec key that set the offending value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monetk.config import ConfigError, deep_merge, resolve
from monetk_runner.identity import normalize, run_id, with_continue
from monetk_runner.seeds import SeedError, format_seeds, parse_seeds
from monetk_runner.spec import PER_DATASET, Spec, SpecError, is_per_dataset, read_spec

_PROBLEM = re.compile(r"^([A-Za-z_][\w.]*): (.*)$", re.DOTALL)
#: The most runs one spec may expand to unless ``max_runs`` allows more (the paper's three
#: sections: 1,800 runs, 1,400 distinct); checked before any run config is built.
MAX_RUNS = 10_000


@dataclass(frozen=True)
class Run:
    """One training run of a spec. ``alt_id``: the same run with the other continue setting."""

    dataset: str
    condition: str
    seed: int
    config: dict
    run_id: str
    alt_id: str

    @property
    def continued(self) -> bool:
        return bool(self.config["train"]["continue_after_stop"])

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.condition}/seed-{self.seed}"


def load_runs(
    path: str | Path, profile: str | None = None, sets: Iterable[str] = (),
    max_runs: int = MAX_RUNS,
) -> tuple[Spec, list[Run]]:
    """Read and check a spec and expand it; raise :class:`SpecError` with every problem found.

    Every other profile the spec declares is checked too (as written, without ``sets``), so a
    value that only one profile would use is refused whichever profile is chosen; its problems
    say which profile they come from."""
    spec, problems = read_spec(path, profile, sets)
    runs: list[Run] = []
    if spec is not None:
        runs, config_problems = expand(spec, max_runs)
        problems = list(dict.fromkeys([*problems, *config_problems]))
        for other in spec.declared_profiles:
            if other != spec.profile:
                problems += [f"{p} (under profile {other})"
                             for p in _profile_problems(path, other, max_runs)
                             if p not in problems]
    if problems or spec is None:
        raise SpecError(problems)
    return spec, runs


def _profile_problems(path: str | Path, profile: str, max_runs: int) -> list[str]:
    spec, problems = read_spec(path, profile)
    if spec is not None:
        problems += expand(spec, max_runs)[1]
    return list(dict.fromkeys(problems))


def load_spec(path: str | Path, profile: str | None = None, sets: Iterable[str] = ()) -> dict:
    """The checked, resolved spec as plain data (what the report gets); raise :class:`SpecError`."""
    return load_runs(path, profile, sets)[0].as_dict()


def pick_dataset(value: Any, dataset: str) -> Any:
    """``value`` with every ``{per_dataset: {...}}`` leaf replaced by its entry for ``dataset``."""
    if is_per_dataset(value):
        return pick_dataset(value[PER_DATASET][dataset], dataset)
    if isinstance(value, Mapping):
        return {key: pick_dataset(item, dataset) for key, item in value.items()}
    return value


def expand(spec: Spec, max_runs: int = MAX_RUNS) -> tuple[list[Run], list[str]]:
    """All runs of ``spec`` in dataset, condition, seed order, and the problems of their configs
    (no runs, and one problem, when there would be more than ``max_runs``)."""
    runs: list[Run] = []
    problems: list[str] = []
    count = len(spec.datasets) * len(spec.conditions) * len(spec.seeds)
    if count > max_runs:
        return [], [f"{spec.locate(('seeds',))}: the spec expands to {count:,} runs "
                    f"({len(spec.datasets)} datasets x {len(spec.conditions)} conditions x "
                    f"{len(spec.seeds):,} seeds), more than {max_runs:,}; pass --max-runs "
                    f"{count} to allow it"]
    continue_seeds = set(spec.continue_seeds)
    for dataset, dataset_partial in spec.datasets.items():
        for condition, condition_partial in spec.conditions.items():
            partial = deep_merge(
                deep_merge(pick_dataset(spec.defaults, dataset), dataset_partial),
                pick_dataset(condition_partial, dataset),
            )
            try:
                resolved = resolve(partial)
            except ConfigError as error:
                problems.extend(_locate(spec, dataset, condition, str(error)))
                continue
            for seed in spec.seeds:
                continued = seed in continue_seeds
                config = normalize({**with_continue(resolved, continued), "seed": seed})
                alt = with_continue(config, not continued)
                runs.append(Run(dataset, condition, seed, config, run_id(config), run_id(alt)))
    return runs, problems


def _locate(spec: Spec, dataset: str, condition: str, message: str) -> list[str]:
    located = []
    for problem in message.split("; "):
        match = _PROBLEM.match(problem)
        if not match:
            located.append(
                f"{spec.locate(('datasets', dataset))} x condition {condition}: {problem}"
            )
            continue
        config_path = tuple(match.group(1).split("."))
        spec_path = _spec_path(spec.content, dataset, condition, config_path)
        if spec_path is None:
            located.append(
                f"{spec.locate(('conditions', condition))} (dataset {dataset}): "
                f"run config {match.group(1)}: {match.group(2)}"
            )
        else:
            located.append(f"{spec.locate(spec_path)}: {match.group(2)}")
    return located


def _spec_path(content: Mapping, dataset: str, condition: str, config_path: tuple) -> tuple | None:
    """The spec key that sets ``config_path`` for (dataset, condition), highest precedence first."""
    candidates = (
        ("conditions", condition, *config_path, PER_DATASET, dataset),
        ("conditions", condition, *config_path),
        ("datasets", dataset, *config_path),
        ("defaults", *config_path, PER_DATASET, dataset),
        ("defaults", *config_path),
    )
    for candidate in candidates:
        node: Any = content
        for key in candidate:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            return candidate
    return None


def select(
    runs: list[Run],
    spec: Spec,
    seeds: str | None = None,
    datasets: str | None = None,
    conditions: str | None = None,
) -> list[Run]:
    """The runs matching ``--seeds``, ``--datasets`` and ``--conditions`` (None: all)."""
    problems: list[str] = []
    seed_set = set(spec.seeds)
    if seeds is not None:
        try:
            wanted = parse_seeds(seeds)
        except SeedError as error:
            problems.append(f"--seeds: {error}")
        else:
            outside = [s for s in wanted if s not in seed_set]
            if outside:
                problems.append(
                    f"--seeds: {format_seeds(outside)} not among the spec's seeds "
                    f"(allowed: {format_seeds(spec.seeds)})"
                )
            seed_set = set(wanted)
    dataset_set = _names("--datasets", datasets, spec.datasets, problems)
    condition_set = _names("--conditions", conditions, spec.conditions, problems)
    if problems:
        raise SpecError(problems)
    return [
        run
        for run in runs
        if run.seed in seed_set and run.dataset in dataset_set and run.condition in condition_set
    ]


def _names(option: str, text: str | None, known: Mapping, problems: list[str]) -> set[str]:
    if text is None:
        return set(known)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        problems.append(
            f"{option}: {', '.join(unknown) or repr(text)} not in the spec "
            f"(allowed: {', '.join(known)}; comma-separated)"
        )
    return set(names)
