"""One output folder, one experiment: ``OUT/<spec name>/experiment.json`` records the spec file,
profile and ``--set`` overrides that made the folder, so that another spec with the same ``name:``
or other overrides cannot silently rewrite its results and report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from monetk_runner.spec import display_path
from monetk_runner.store import atomic_write_json

RECORD = "experiment.json"


@dataclass(frozen=True)
class Made:
    """What made a folder: the spec file (as given, relative to the working directory when below
    it), the profile and the ``--set`` overrides in order."""

    spec_file: str
    profile: str | None
    sets: tuple[str, ...]

    @classmethod
    def of(cls, spec_file: str | Path, profile: str | None, sets: Sequence[str]) -> Made:
        return cls(display_path(Path(spec_file).absolute()), profile, tuple(sets))

    def describe(self) -> str:
        sets = " ".join(f"--set {s}" for s in self.sets)
        return f"{self.spec_file} --profile {self.profile or 'none'}" + (f" {sets}" if sets else "")


def recorded(spec_dir: Path) -> Made | None:
    """The folder's record, or None when it has none (new, or made before monetk 0.4)."""
    path = spec_dir / RECORD
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Made(data["spec_file"], data.get("profile"), tuple(data.get("sets") or ()))


def record(spec_dir: Path, made: Made) -> None:
    """Write the folder's record atomically."""
    atomic_write_json(spec_dir / RECORD, {**asdict(made), "sets": list(made.sets)})


def conflict(spec_dir: Path, before: Made, now: Made, report_only: bool) -> str | None:
    """Why ``now`` may not write into a folder ``before`` made, or None: another spec file is
    always refused; other overrides are refused for ``--report-only`` (which would describe runs
    it did not choose), while a training command may change them (:func:`changed` says so)."""
    if before.spec_file != now.spec_file:
        return (f"{spec_dir} holds the experiment of {before.spec_file}; {now.spec_file} has the "
                "same name: give it another `name:` (or use another --out)")
    if report_only and (before.profile, before.sets) != (now.profile, now.sets):
        return (f"{spec_dir} was made by {before.describe()}; this command is "
                f"{now.describe()}: use the same profile and --set values (--report-only "
                "without --profile and --set reuses them), or another --out")
    return None


def changed(spec_dir: Path, before: Made, now: Made) -> str | None:
    """A notice when a training command changes the profile or overrides of a folder."""
    if (before.profile, before.sets) == (now.profile, now.sets):
        return None
    return (f"Note: {spec_dir} was made by {before.describe()}; its results.csv and report now "
            f"follow {now.describe()}")
