"""Warnings without a flood: each place that warns prints its first warning as one line (no
source line under it); its further warnings are counted, and one line at the end says how many
there were. A report over a store with failed runs warns once per dropped seed and test
(``analysis.results.BlockDroppedWarning``): 144 warnings of two lines each before this.

The warning filters are left as they are (``-W error`` still raises; Python's default shows a
warning of the same text from the same place once)."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import TextIO

Site = tuple[type, str, int]  # category, file, line


class collapse_warnings(contextlib.ContextDecorator):  # noqa: N801 (used as a decorator)
    """Within it (or the function it decorates), warnings are shown as the module docstring
    says, on ``stream`` (default: ``sys.stderr`` at the time of each warning)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.counts: dict[Site, int] = {}

    def __enter__(self) -> collapse_warnings:
        self.counts = {}
        self.saved = warnings.showwarning
        warnings.showwarning = self.show
        return self

    def __exit__(self, *exc: object) -> bool:
        warnings.showwarning = self.saved
        for (category, filename, lineno), count in self.counts.items():
            if count > 1:
                self._print(f"warning: {count - 1} more {category.__name__} from "
                            f"{where(filename, lineno)} like the one above ({count} in all)")
        return False

    def show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        """``warnings.showwarning``: the first warning of a place as one line; count the rest."""
        site = (category, filename, lineno)
        self.counts[site] = self.counts.get(site, 0) + 1
        if self.counts[site] == 1:
            text = " ".join(str(message).split())
            self._print(f"warning: {category.__name__}: {text} ({where(filename, lineno)})")

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)


def where(filename: str, lineno: int) -> str:
    """``analysis/figures.py:94``: relative to the working directory when under it."""
    with contextlib.suppress(ValueError):
        relative = os.path.relpath(filename)
        if not relative.startswith(os.pardir):
            filename = relative
    return f"{filename}:{lineno}"
