"""Atomic file writes: a reader (or a rerun after a kill) never sees a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _file_mode() -> int:
    """The mode ``open`` would give a new file under the process umask (``mkstemp`` gives 0600,
    which a group sharing the output folder could not read)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, fsync it, then rename it over ``path``; the
    file gets the mode the umask allows (as ``open`` would create it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any) -> None:
    """:func:`atomic_write_text` of ``data`` as indented JSON."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


#: Folder of a run directory where damaged or non-finite files are moved (kept, never deleted).
SET_ASIDE = "set-aside"


def set_aside(path: str | Path, folder: str | Path) -> Path:
    """Move a damaged file into ``folder`` (created if needed) under a new, time-stamped name, so
    it is kept for inspection and never overwritten; return where it went."""
    path, folder = Path(path), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{time.time_ns()}-{path.name}"
    os.replace(path, target)
    return target
