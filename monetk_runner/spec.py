"""Read a spec: ``extends`` chain, profile, ``--set`` overrides, and the checks of its structure.

A spec (contract B of the project) is a YAML mapping with the keys of :data:`SPEC_KEYS`. Loading
merges the ``extends`` chain (the child overrides its base, deep merge), then the chosen profile
(``profiles.<name>``, deep merge), then each ``--set key.path=value``. Every leaf remembers the file
and key path it came from, so each problem names where to fix it. Problems are collected, not raised
one by one: :func:`read_spec` returns them with the spec; :mod:`monetk_runner.expand` adds those
found in the resolved run configs.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monetk.config import DEFAULTS, deep_merge
from monetk_runner.seeds import SeedError, format_seeds, parse_seeds
from monetk_runner.yamlio import load_file, load_text

#: Top-level keys of a spec and what each holds.
SPEC_KEYS = {
    "name": "output folder name",
    "title": "one line for tables and the report",
    "description": "what the spec (or a profile) is for",
    "extends": "path of a base spec, relative to this file",
    "defaults": "partial run config shared by all runs",
    "datasets": "dataset name -> partial run config",
    "run_datasets": "the datasets to train and report, a list (default: all of datasets)",
    "conditions": "condition name -> partial run config",
    "seeds": "seed list or range, e.g. 1-100",
    "continue_seeds": "seeds trained past the stopping rule to max_steps",
    "tests": "statistical tests (the analysis package)",
    "paper": "the paper's reported numbers (the analysis package)",
    "sequential": "train seeds in waves until the listed tests decide (analysis.sequential_design)",
    "report": "thresholds of the report's rules: chance_margin, under_trained, verdicts "
              "(analysis.findings)",
    "profiles": "profile name -> overrides of any of the keys above",
}
PROFILE_KEYS = tuple(k for k in SPEC_KEYS if k not in ("extends", "profiles"))
REQUIRED_KEYS = ("name", "datasets", "conditions", "seeds")
DEFAULT_PROFILE = "paper"
PER_DATASET = "per_dataset"
#: Run-config keys a spec may not set: the runner sets them from ``seeds`` and ``continue_seeds``.
RUNNER_SET = {("seed",): "seeds", ("train", "continue_after_stop"): "continue_seeds"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+\-]*$")
#: Spec names that would put the spec's view inside a folder the runner owns (``OUT/store``).
RESERVED_NAMES = ("store",)
NAME_RULE = "letters, digits, '_', '+', '-'; starting with a letter or digit"

Path_ = tuple  # a key path: str keys and int list indices


class SpecError(ValueError):
    """A spec has problems; ``problems`` holds one message per problem (file: key path: what)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Origins:
    """Where each leaf of the merged spec came from: ``path -> (file label, path in that file)``."""

    main: str
    leaves: dict[Path_, tuple[str, Path_]] = field(default_factory=dict)

    def record(self, value: Any, file: str, path: Path_ = ()) -> None:
        """Record ``file`` as the origin of each leaf of ``value`` under ``path``."""
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                self.record(item, file, (*path, key))
        else:
            self.leaves[path] = (file, path)

    def origin(self, path: Path_) -> tuple[str, Path_]:
        """(file, path in that file) of ``path``: its own, its nearest ancestor's or a child's."""
        for depth in range(len(path), 0, -1):
            if path[:depth] in self.leaves:
                file, in_file = self.leaves[path[:depth]]
                return file, (*in_file, *path[depth:])
        for leaf, (file, in_file) in self.leaves.items():
            if leaf[: len(path)] == path:
                return file, in_file[: len(in_file) - len(leaf) + len(path)]
        return self.main, path

    def locate(self, path: Path_) -> str:
        """``"file: key.path"`` for ``path``."""
        file, in_file = self.origin(path)
        return f"{file}: {format_path(in_file)}"


@dataclass
class Spec:
    """A loaded spec: the merged content plus where each value came from."""

    path: Path
    profile: str | None
    content: dict[str, Any]
    origins: Origins
    seeds: list[int]
    continue_seeds: list[int]
    profile_description: str | None = None
    #: Every profile the spec (or a spec it extends) declares.
    declared_profiles: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.content["name"]

    @property
    def datasets(self) -> dict[str, dict]:
        return self.content["datasets"]

    @property
    def conditions(self) -> dict[str, dict]:
        return self.content["conditions"]

    @property
    def defaults(self) -> dict[str, Any]:
        return self.content.get("defaults") or {}

    def locate(self, path: Path_) -> str:
        return self.origins.locate(tuple(path))

    def as_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data, for the report and the snapshot (seeds as ``1-100``)."""
        data = copy.deepcopy(self.content)
        data["seeds"] = format_seeds(self.seeds)
        data["continue_seeds"] = format_seeds(self.continue_seeds)
        data["profile"] = self.profile
        data["profile_description"] = self.profile_description
        data.setdefault("tests", [])
        data.setdefault("paper", {})
        if data.get("sequential") is not None:  # max_seeds resolved: the report has no seed list
            from analysis.sequential_design import design

            data["sequential"] = {**data["sequential"], **design(data, len(self.seeds))}
        return data


def format_path(path: Iterable[Any]) -> str:
    """``("tests", 1, "pairs")`` -> ``"tests[1].pairs"``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def read_spec(
    path: str | Path, profile: str | None = None, sets: Iterable[str] = ()
) -> tuple[Spec | None, list[str]]:
    """Load ``path`` with its profile and overrides; return the spec and the problems found.

    The spec is ``None`` when its structure is too broken to expand into runs.
    """
    path = Path(path).resolve()
    problems: list[str] = []
    origins = Origins(display_path(path))
    content = _load_chain(path, origins, problems, ())
    if content is None:
        return None, problems
    profiles = content.pop("profiles", None) or {}
    if not isinstance(profiles, Mapping):
        problems.append(f"{origins.locate(('profiles',))}: expected a mapping of profile names")
        profiles = {}
    main_datasets = content.get("datasets")
    main_datasets = set(main_datasets) if isinstance(main_datasets, Mapping) else set()
    for name, body in profiles.items():
        _check_profile(name, body, main_datasets, origins, problems)
    chosen = (
        profile
        if profile is not None
        else (DEFAULT_PROFILE if DEFAULT_PROFILE in profiles else None)
    )
    if chosen is not None and chosen not in profiles:
        allowed = ", ".join(map(str, profiles)) or "none defined"
        problems.append(
            f"{origins.main}: --profile: {chosen!r} is not a profile (allowed: {allowed})"
        )
        chosen = None
    if chosen is not None and isinstance(profiles[chosen], Mapping):
        body = profiles[chosen]
        content = deep_merge(content, body)
        for leaf in _leaf_paths(body):
            origins.leaves[leaf] = origins.origin(("profiles", chosen, *leaf))
    for assignment in sets:
        _apply_set(content, assignment, origins, problems)
    spec = _check_content(path, chosen, content, origins, problems)
    if spec is not None:
        spec.declared_profiles = tuple(str(name) for name in profiles)
    if spec is not None and chosen is not None and isinstance(profiles[chosen], Mapping):
        spec.profile_description = profiles[chosen].get("description")
    return spec, _unique(problems)


def _load_chain(path: Path, origins: Origins, problems: list[str], chain: tuple) -> dict | None:
    label = display_path(path)
    if path in chain:
        cycle = " -> ".join(display_path(p) for p in (*chain, path))
        problems.append(f"{label}: extends: cycle {cycle}")
        return None
    try:
        data = load_file(path)
    except FileNotFoundError:
        problems.append(f"{label}: file not found")
        return None
    except IsADirectoryError:
        problems.append(f"{label}: is a directory, not a spec file")
        return None
    except UnicodeDecodeError as error:
        problems.append(f"{label}: is not UTF-8 text (byte {error.start}: {error.reason})")
        return None
    except OSError as error:
        problems.append(f"{label}: cannot be read: {error.strerror or error}")
        return None
    except yaml.YAMLError as error:
        problems.append(f"{label}: not valid YAML: {error}")
        return None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problems.append(f"{label}: expected a mapping of spec keys ({', '.join(SPEC_KEYS)})")
        return None
    data = dict(data)
    base: dict = {}
    if "extends" in data:
        target = data.pop("extends")
        if not isinstance(target, str):
            problems.append(f"{label}: extends: expected a file path, got {target!r}")
            return None
        base_path = (path.parent / target).resolve()
        if not base_path.is_file():
            problems.append(
                f"{label}: extends: file {target!r} not found (looked for "
                f"{display_path(base_path)};"
                " the path is relative to this file)"
            )
            return None
        loaded = _load_chain(base_path, origins, problems, (*chain, path))
        if loaded is None:
            return None
        base = loaded
    origins.record(data, label)
    return deep_merge(base, data)


def _leaf_paths(value: Any, path: Path_ = ()) -> list[Path_]:
    if isinstance(value, Mapping) and value:
        return [leaf for key, item in value.items() for leaf in _leaf_paths(item, (*path, key))]
    return [path]


def _check_top_level(
    content: Mapping, allowed: Mapping | tuple, path: Path_, origins: Origins, problems: list[str]
) -> None:
    for key in content:
        if key not in allowed:
            problems.append(
                f"{origins.locate((*path, key))}: unknown key (allowed: {', '.join(allowed)})"
            )


def _check_profile(
    name: Any, body: Any, datasets: set, origins: Origins, problems: list[str]
) -> None:
    path = ("profiles", name)
    if not isinstance(body, Mapping):
        problems.append(
            f"{origins.locate(path)}: expected a mapping of overrides (allowed keys: "
            f"{', '.join(PROFILE_KEYS)})"
        )
        return
    _check_top_level(body, PROFILE_KEYS, path, origins, problems)
    names = set(datasets)
    if isinstance(body.get("datasets"), Mapping):
        names |= set(body["datasets"])
    for section in ("defaults", "datasets", "conditions"):
        if isinstance(body.get(section), Mapping):
            _check_section(section, body[section], (*path, section), names, origins, problems)


def _apply_set(content: dict, assignment: str, origins: Origins, problems: list[str]) -> None:
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        problems.append(f"--set {assignment!r}: expected key.path=value (value in YAML)")
        return
    try:
        value = load_text(text)
    except yaml.YAMLError as error:
        problems.append(f"--set {key}: value {text!r} is not valid YAML: {error}")
        return
    parts: list[Any] = key.split(".")
    node: Any = content
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                problems.append(
                    f"--set {key}: {part!r} is not an index of the list at "
                    f"{'.'.join(parts[:depth])} (0..{len(node) - 1})"
                )
                return
            parts[depth] = part = int(part)
        elif not isinstance(node, dict):
            problems.append(f"--set {key}: {'.'.join(map(str, parts[:depth]))} is not a mapping")
            return
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]
    path = tuple(parts)
    for leaf in [leaf for leaf in origins.leaves if leaf[: len(path)] == path]:
        del origins.leaves[leaf]
    origins.record(value, "--set", path)


def _check_content(
    path: Path, profile: str | None, content: dict, origins: Origins, problems: list[str]
) -> Spec | None:
    """Check the merged spec's keys, names, seeds and run-config sections; clean what it can."""
    for key in content:
        if key not in PROFILE_KEYS:
            problems.append(
                f"{origins.locate((key,))}: unknown key (allowed: {', '.join(SPEC_KEYS)})"
            )
    content = {key: value for key, value in content.items() if key in PROFILE_KEYS}
    for key in REQUIRED_KEYS:
        if key not in content:
            problems.append(
                f"{origins.main}: {key}: missing (required keys: {', '.join(REQUIRED_KEYS)})"
            )
    for key in ("name", "title", "description"):
        if key in content and not isinstance(content[key], str):
            problems.append(f"{origins.locate((key,))}: expected a string, got {content[key]!r}")
    name = content.get("name")
    if isinstance(name, str) and not _NAME.match(name):
        problems.append(f"{origins.locate(('name',))}: {name!r} is not a folder name ({NAME_RULE})")
    elif name in RESERVED_NAMES:
        problems.append(f"{origins.locate(('name',))}: {name!r} is the run store's folder; choose "
                        f"another name (reserved: {', '.join(RESERVED_NAMES)})")
    broken = False
    for section in ("datasets", "conditions"):
        table = content.get(section)
        if not isinstance(table, Mapping) or not table:
            if section in content:
                problems.append(
                    f"{origins.locate((section,))}: expected a non-empty mapping of names to "
                    "partial run configs"
                )
            broken = True
            continue
        for entry in table:
            if not isinstance(entry, str) or not _NAME.match(entry):
                hint = "" if isinstance(entry, str) else "; quote names such as '01' in YAML"
                problems.append(
                    f"{origins.locate((section, entry))}: {entry!r} is not a valid "
                    f"{section[:-1]} name ({NAME_RULE}{hint})"
                )
                broken = True
    if broken:
        return None
    run_datasets = content.pop("run_datasets", None)
    dataset_names = set(content["datasets"])
    for section in ("defaults", "datasets", "conditions"):
        if section in content:
            content[section] = _check_section(
                section, content[section], (section,), dataset_names, origins, problems
            )
    seeds, continue_seeds = (
        _seeds(content, key, origins, problems) if key in content else []
        for key in ("seeds", "continue_seeds")
    )
    if "tests" in content and not isinstance(content["tests"], list):
        problems.append(f"{origins.locate(('tests',))}: expected a list of tests")
        content["tests"] = []
    if "paper" in content and not isinstance(content["paper"], (Mapping, type(None))):
        problems.append(
            f"{origins.locate(('paper',))}: expected a mapping (medians, p_values, stop_effect)")
        content["paper"] = {}
    outside = [s for s in continue_seeds if s not in set(seeds)]
    if outside and seeds:
        problems.append(f"{origins.locate(('continue_seeds',))}: {format_seeds(outside)} not "
                        f"among the seeds (allowed: {format_seeds(seeds)})")
    spec = Spec(path, profile, content, origins, seeds, [s for s in seeds if s in continue_seeds])
    problems.extend(_check_tests(spec))
    if run_datasets is not None:
        _select_datasets(content, run_datasets, origins, problems)
    return spec


def _select_datasets(content: dict, chosen: Any, origins: Origins, problems: list[str]) -> None:
    """Keep only the datasets named by ``run_datasets`` (a profile may train a subset), and the
    paper's numbers for them; the whole spec was checked before."""
    allowed = ", ".join(content["datasets"])
    if not isinstance(chosen, list) or not chosen:
        problems.append(
            f"{origins.locate(('run_datasets',))}: expected a non-empty list of dataset names "
            f"(allowed: {allowed})"
        )
        return
    unknown = [name for name in chosen if name not in content["datasets"]]
    if unknown:
        problems.append(
            f"{origins.locate(('run_datasets',))}: {', '.join(map(str, unknown))} not among the "
            f"datasets (allowed: {allowed})"
        )
        return
    content["datasets"] = {name: content["datasets"][name] for name in chosen}
    for key, per_dataset in (content.get("paper") or {}).items():
        if isinstance(per_dataset, Mapping):
            content["paper"][key] = {k: v for k, v in per_dataset.items() if k in chosen}


def _seeds(content: Mapping, key: str, origins: Origins, problems: list[str]) -> list[int]:
    """The parsed seeds under ``key``; none (and a problem) when they cannot be read."""
    try:
        return parse_seeds(content.get(key))
    except SeedError as error:
        problems.append(f"{origins.locate((key,))}: {error}")
        return []


def _check_section(
    section: str, value: Any, path: Path_, datasets: set, origins: Origins, problems: list[str]
) -> dict:
    """Check ``defaults`` (one partial config) or ``datasets``/``conditions`` (name -> partial)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{origins.locate(path)}: expected a mapping, got {value!r}")
        return {}
    allow_per_dataset = section != "datasets"
    if section == "defaults":
        return _check_partial(value, DEFAULTS, path, allow_per_dataset, datasets, origins, problems)
    return {
        entry: _check_partial(
            partial or {}, DEFAULTS, (*path, entry), allow_per_dataset, datasets, origins, problems
        )
        for entry, partial in value.items()
    }


def is_per_dataset(value: Any) -> bool:
    """Whether ``value`` is a ``{per_dataset: {dataset: value}}`` leaf."""
    return isinstance(value, Mapping) and list(value) == [PER_DATASET]


def _check_partial(
    value: Any,
    schema: Mapping,
    path: Path_,
    allow_per_dataset: bool,
    datasets: set,
    origins: Origins,
    problems: list[str],
) -> dict:
    """Keep the keys of ``value`` known to ``schema`` (monetk's DEFAULTS); report the others."""
    if not isinstance(value, Mapping):
        problems.append(
            f"{origins.locate(path)}: expected a mapping (allowed keys: {', '.join(schema)}), "
            f"got {value!r}"
        )
        return {}
    clean: dict = {}
    for key, item in value.items():
        where = (*path, key)
        config_path = _config_path(where)
        if key not in schema:
            problems.append(f"{origins.locate(where)}: unknown key (allowed: {', '.join(schema)})")
        elif config_path in RUNNER_SET:
            problems.append(
                f"{origins.locate(where)}: set by the spec's {RUNNER_SET[config_path]!r}, not here"
            )
        elif is_per_dataset(item):
            if not allow_per_dataset:
                problems.append(
                    f"{origins.locate(where)}: per_dataset is allowed in defaults and "
                    "conditions only"
                )
                continue
            table = _check_per_dataset(
                item[PER_DATASET], schema[key], (*where, PER_DATASET), datasets, origins, problems
            )
            if table is not None:
                clean[key] = {PER_DATASET: table}
        elif isinstance(schema[key], Mapping):
            clean[key] = _check_partial(
                item, schema[key], where, allow_per_dataset, datasets, origins, problems
            )
        else:
            clean[key] = item
    return clean


def _check_per_dataset(
    table: Any, schema: Any, path: Path_, datasets: set, origins: Origins, problems: list[str]
) -> dict | None:
    """The checked ``per_dataset`` table, or None when it does not give every dataset a value."""
    allowed = ", ".join(sorted(datasets))
    if not isinstance(table, Mapping):
        problems.append(f"{origins.locate(path)}: expected a mapping dataset -> value ({allowed})")
        return None
    clean: dict = {}
    for name, item in table.items():
        if name not in datasets:
            problems.append(
                f"{origins.locate((*path, name))}: unknown dataset (allowed: {allowed})"
            )
        elif isinstance(schema, Mapping):
            clean[name] = _check_partial(
                item, schema, (*path, name), True, datasets, origins, problems
            )
        else:
            clean[name] = item
    missing = sorted(datasets - set(table))
    if missing:
        problems.append(
            f"{origins.locate(path)}: no value for dataset(s) {', '.join(missing)} "
            f"(per_dataset needs every dataset: {allowed})"
        )
        return None
    return clean


def _config_path(spec_path: Path_) -> tuple:
    """The run-config key path of a spec key path (drops section, entry and per_dataset parts)."""
    if spec_path[0] == "profiles":
        return _config_path(spec_path[2:]) if len(spec_path) > 2 else ()
    parts = list(spec_path[2:] if spec_path[0] in ("datasets", "conditions") else spec_path[1:])
    while PER_DATASET in parts:
        index = parts.index(PER_DATASET)
        del parts[index : index + 2]
    return tuple(parts)


def _check_tests(spec: Spec) -> list[str]:
    """Problems of ``tests``, ``paper`` and ``sequential``, found by the analysis package, located
    in their file."""
    from analysis import validate_tests
    from analysis.findings import validate_report
    from analysis.sequential_design import validate_sequential

    content = spec.content
    messages = validate_tests(
        content.get("tests") or [],
        content.get("paper"),
        list(spec.conditions),
        list(spec.datasets),
    )
    messages += validate_sequential(content.get("sequential"), content.get("tests"),
                                    len(spec.seeds))
    messages += validate_report(content.get("report"))
    located = []
    for message in messages:
        section = next((key for key in ("paper", "sequential", "report")
                        if message.startswith(key)),
                       "tests")
        file, in_file = spec.origins.origin((section,))
        prefix = format_path(in_file[:-1]) + "." if in_file[:-1] else ""
        located.append(f"{file}: {prefix}{message}")
    return located


def _unique(messages: list[str]) -> list[str]:
    return list(dict.fromkeys(messages))
