"""Read a resolved spec: the plain YAML that ``runner.py`` writes beside results.csv.

The runner resolves a spec (its ``extends`` chain, the chosen profile, every ``--set``) and writes
the result to ``OUT/<name>/spec.yaml``, next to ``OUT/<name>/results.csv``. ``analysis`` reads
that file as plain data and checks the parts it uses with its own validators; it does not merge
base specs, pick profiles or apply overrides (that is the runner's job), so a spec as written,
with ``extends`` or ``profiles``, is refused with a message that names the resolved file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from analysis.findings import validate_report
from analysis.sequential_design import validate_sequential
from analysis.spec_tests import validate_tests

#: Keys that only a spec as written has: the runner removes them when it resolves the spec.
UNRESOLVED_KEYS = ("extends", "profiles")
WHERE_RESOLVED = (
    "python -m analysis reads the resolved spec that runner.py writes beside results.csv "
    "(OUT/<name>/spec.yaml); it does not resolve extends, profiles or --set "
    "(runner.py SPEC --profile NAME --report-only writes both files from the finished runs)"
)


class SpecFileError(ValueError):
    """A resolved spec cannot be used; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def read_resolved_spec(path: str | Path) -> dict[str, Any]:
    """The resolved spec at ``path`` as a dict; raise :class:`SpecFileError` listing every problem
    (each message starts with ``path``)."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecFileError([f"{label}: cannot read the spec: {error}"]) from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "invalid YAML"
        raise SpecFileError([f"{label}: not valid YAML: {first}"]) from None
    problems = [f"{label}: {problem}" for problem in check_resolved_spec(spec)]
    if problems:
        raise SpecFileError(problems)
    return spec


def check_resolved_spec(spec: Any) -> list[str]:
    """One message per problem of a resolved spec (key path first), as the report needs it."""
    if not isinstance(spec, Mapping):
        return [f"(top level): expected a mapping (a resolved spec), got {type(spec).__name__}"]
    unresolved = [key for key in UNRESOLVED_KEYS if key in spec]
    if unresolved:
        return [f"{key}: this is a spec as written, not a resolved one; {WHERE_RESOLVED}"
                for key in unresolved]
    problems = []
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        problems.append("name: required, a non-empty string")
    for key in ("datasets", "conditions"):
        value = spec.get(key)
        if not isinstance(value, Mapping) or not value:
            problems.append(f"{key}: required, a non-empty mapping of names")
    if problems:
        return problems
    conditions = [str(c) for c in spec["conditions"]]
    datasets = [str(d) for d in spec["datasets"]]
    problems += validate_tests(spec.get("tests"), spec.get("paper"), conditions, datasets)
    sequential = spec.get("sequential")
    if sequential is not None:
        max_seeds = sequential.get("max_seeds") if isinstance(sequential, Mapping) else None
        if isinstance(sequential, Mapping) and not isinstance(max_seeds, int):
            problems.append(f"sequential.max_seeds: {max_seeds!r}: a resolved spec states it as "
                            f"an integer; {WHERE_RESOLVED}")
        else:
            problems += validate_sequential(sequential, spec.get("tests"), max_seeds or 1)
    problems += validate_report(spec.get("report"))
    return problems
