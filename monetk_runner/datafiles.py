"""Data files checked before anything runs: every DeepMind TFRecord file the selected runs read
exists and starts with a record in the layout its ``data.source`` expects; when one does not, the
message says how to get the files (``python -m monetk.data fetch``) and how to run without them
(the spec's ``smoke``, ``quick`` and ``demo`` profiles, on built-in generated scenes)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from monetk.data.deepmind import SOURCES, LayoutError, check_file
from monetk.data.fetch import DEFAULT_DIR, FILES
from monetk.data.tfrecord import TFRecordError
from monetk_runner.expand import Run, load_runs
from monetk_runner.spec import Spec, SpecError

#: Where a user is told to read about the files (README section).
WHERE_TO_READ = 'README.md, section "Paper scale"'
#: Profiles that need no download, offered when the data files are missing.
NO_DOWNLOAD_PROFILES = ("smoke", "quick", "demo")


@dataclass(frozen=True)
class DataFile:
    """One data file (or built-in generator) that ``runs`` of the selection read."""

    dataset: str
    source: str
    path: str | None
    variant: str | None
    #: ``present``, ``missing``, ``unreadable``, ``wrong layout`` or ``generated``.
    state: str
    #: :func:`monetk.data.deepmind.check_file`'s one-line message, when the file is not usable.
    problem: str | None
    runs: int


def data_files(runs: Iterable[Run]) -> list[DataFile]:
    """The distinct data files (or generators) of ``runs``, in run order, each checked (the
    first record only is read)."""
    found: dict[tuple, list] = {}
    for run in runs:
        data = run.config["data"]
        variant = data.get("variant") if data["source"] == "multi_dsprites_tfrecord" else None
        key = (run.dataset, data["source"], data.get("path"), variant)
        found.setdefault(key, [0])[0] += 1
    return [_check(*key, count) for key, (count,) in found.items()]


def _check(dataset: str, source: str, path: str | None, variant: str | None,
           runs: int) -> DataFile:
    if not source.endswith("_tfrecord"):
        return DataFile(dataset, source, path, variant, "generated", None, runs)
    try:
        check_file(path, source, variant)
    except LayoutError as error:
        cause = error.__cause__
        state = ("missing" if not os.path.isfile(path) else
                 "unreadable" if isinstance(cause, (OSError, TFRecordError)) else "wrong layout")
        return DataFile(dataset, source, path, variant, state, str(error), runs)
    return DataFile(dataset, source, path, variant, "present", None, runs)


def describe(files: list[DataFile]) -> list[str]:
    """``--dry-run``'s lines: each dataset's data file and its state."""
    width = max(len(f.dataset) for f in files)
    lines = ["Data files:"]
    for f in files:
        where = f.path if f.state != "generated" else f"(built-in {f.source})"
        lines.append(f"  {f.dataset + ':':<{width + 1}}  {f.state:<12}  {where}")
    return lines


def data_problems(files: list[DataFile], spec_arg: str, spec: Spec) -> list[str]:
    """One message per data file that is missing, unreadable or in another layout, then how to
    get the files and how to run ``spec_arg`` (the spec as the user named it) without them;
    none when every file is fine or every run uses a built-in generator."""
    bad = [f for f in files if f.problem]
    if not bad:
        return []
    lines = [f.problem for f in bad]
    fetches = _fetch_commands(bad)
    if fetches:
        lines.append(f"Download DeepMind's files ({WHERE_TO_READ}):")
        lines += [f"  {command}" for command in fetches]
        lines.append("or point the spec at your copy: --set datasets.<dataset>.data.path=<file>")
    else:
        lines.append(f"Get DeepMind's files as {WHERE_TO_READ}, shows, or point the spec at "
                     "your copy with --set datasets.<dataset>.data.path=<file>")
    profiles = no_download_profiles(spec_arg, spec)
    if profiles:
        lines.append("Or run now without a download, on built-in generated scenes at a reduced "
                     "scale:")
        lines += [f"  python runner.py {shlex.quote(spec_arg)} --profile {name}"
                  for name in profiles]
    return lines


def _fetch_commands(bad: list[DataFile]) -> list[str]:
    """``python -m monetk.data fetch ...`` lines that put the published files where ``bad``
    expects them (into ``data/`` when a path names another file: then ``--set`` is needed)."""
    folders: dict[str, list[str]] = {}
    for f in bad:
        name = SOURCES[f.source]
        remote = FILES[name]
        if f.state != "missing" or f.variant != remote.variant:
            continue  # fetch replaces no file, and gets only the published variant
        same = os.path.basename(f.path) == remote.name
        folder = os.path.normpath(os.path.dirname(f.path) or ".") if same else DEFAULT_DIR
        if name not in folders.setdefault(folder, []):
            folders[folder].append(name)
    return [shlex.join(["python", "-m", "monetk.data", "fetch", *names,
                        *(["--dir", folder] if folder != DEFAULT_DIR else [])])
            for folder, names in folders.items()]


def no_download_profiles(spec_arg: str, spec: Spec) -> list[str]:
    """The spec's :data:`NO_DOWNLOAD_PROFILES` (not the chosen one) whose runs all read
    built-in generated data."""
    found = []
    for name in NO_DOWNLOAD_PROFILES:
        if name == spec.profile or name not in spec.declared_profiles:
            continue
        try:
            _, runs = load_runs(spec_arg, name)
        except SpecError:
            continue
        if all(not run.config["data"]["source"].endswith("_tfrecord") for run in runs):
            found.append(name)
    return found
