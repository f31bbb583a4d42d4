"""Seed lists as specs and the command line write them: ``7``, ``1-100``, ``1-5,10``, ``[1, 2]``."""

from __future__ import annotations

import re
from typing import Any

from monetk.config import SEED_LIMIT

ALLOWED = ("an integer in [0, 2**32), a range 'a-b' with a <= b, or a list or comma-separated "
           "string of these")
#: The most seeds one list may hold (the paper: 100 per condition); checked before the list is
#: built, so a range such as 1-10000000000 costs no memory.
MAX_SEEDS = 100_000
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_SINGLE = re.compile(r"^\s*(\d+)\s*$")


class SeedError(ValueError):
    """A seed list that cannot be read; the message says what is allowed."""


def parse_seeds(value: Any) -> list[int]:
    """The seeds of ``value`` in order; raise :class:`SeedError` on a bad item or a repeat."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    seeds: list[int] = []
    for item in items:
        seeds.extend(_parse_item(item))
        if len(seeds) > MAX_SEEDS:
            raise SeedError(f"{value!r} holds more than {MAX_SEEDS:,} seeds")
    if not seeds:
        raise SeedError(f"no seeds in {value!r} (allowed: {ALLOWED})")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise SeedError(f"seed(s) {repeated} listed more than once in {value!r}")
    return seeds


def _parse_item(item: Any) -> list[int]:
    if isinstance(item, int) and not isinstance(item, bool):
        if not 0 <= item < SEED_LIMIT:
            raise SeedError(f"{item!r} is outside [0, 2**32) (allowed: {ALLOWED})")
        return [item]
    if isinstance(item, str):
        if match := _SINGLE.match(item):
            return _parse_item(int(match.group(1)))
        if match := _RANGE.match(item):
            first, last = int(match.group(1)), int(match.group(2))
            if first > last:
                raise SeedError(
                    f"{item.strip()!r} is not a range: {first} > {last} (allowed: {ALLOWED})"
                )
            if last >= SEED_LIMIT:
                raise SeedError(f"{item.strip()!r} goes past 2**32 - 1 (allowed: {ALLOWED})")
            if last - first + 1 > MAX_SEEDS:
                raise SeedError(f"{item.strip()!r} holds {last - first + 1:,} seeds, more than "
                                f"{MAX_SEEDS:,}")
            return list(range(first, last + 1))
    raise SeedError(f"{item!r} is not a seed or a seed range (allowed: {ALLOWED})")


def format_seeds(seeds: list[int]) -> str:
    """A short form of a seed list: ``[1, 2, 3, 7]`` -> ``"1-3,7"``."""
    if not seeds:
        return ""
    parts: list[str] = []
    ordered = sorted(seeds)
    start = previous = ordered[0]
    for seed in [*ordered[1:], None]:
        if seed is not None and seed == previous + 1:
            previous = seed
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if seed is not None:
            start = previous = seed
    return ",".join(parts)
