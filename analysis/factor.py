"""Blocks for a Friedman test about one factor of a crossed design (e.g. beta in the 2x2 of 3.1).

The factor's levels are the values of its parameter column in results.csv; the *other factors* are
the other parameter columns that vary among the test's conditions, and a *stratum* is one
combination of their levels. Blocking schemes (100 seeds, 2x2 design):

- ``pooled``: blocks = seed x stratum, treatments = factor levels (n = 200);
- ``marginal``: blocks = seed, each level's value the mean over the strata (n = 100);
- ``stratified``: one test per stratum, blocks = seed (2 tests of n = 100, then corrected).

The paper's four p-values of section 3.1 (0.32, 0.048, 0.16, 1.7e-22) are each what a k = 2
Friedman test gives on 200 untied pooled blocks (sign splits 107/93, 114/86, 110/90, 169/31);
with at most 100 blocks (marginal, stratified) no split gives 1.7e-22, and only 31 or 50 untied
blocks give 0.048.

``pooled`` treats a seed's blocks as independent. They are not when the factor's effect varies
by seed (a seed x factor interaction, e.g. a seed-specific beta effect): then a seed's blocks lean
the same way and the test rejects a true null too often (tests/analysis/test_factor.py simulates
it: about 0.12 at nominal 0.05). ``marginal`` and ``stratified`` use one block per seed and keep
their level; :data:`ASSUMPTIONS` is what the report prints for each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.results import paired_values

BLOCKINGS = ("pooled", "marginal", "stratified")
#: The blockings whose blocks are independent across seeds (valid under a seed x factor
#: interaction); the report marks the others with their caveat.
VALID_BLOCKINGS = ("marginal", "stratified")
ASSUMPTIONS = {
    "pooled": "blocks = seed x level of the other factors, counted as independent: NOT valid if "
    "the factor's effect varies by seed (a seed x factor interaction makes a seed's blocks lean "
    "the same way; type I error about 0.12 at nominal 0.05 in the package's simulation); read it "
    "beside the marginal test",
    "marginal": "blocks = seeds (independent runs), each level's value the mean over the other "
    "factors' levels; tests the factor's main effect averaged over them",
    "stratified": "one test per level of the other factors, blocks = seeds (independent runs), "
    "corrected across the strata",
}


@dataclass(frozen=True)
class FactorDesign:
    """Which condition sits in each (factor level, stratum) cell."""

    factor: str
    levels: tuple[Any, ...]
    others: tuple[str, ...]
    strata: tuple[tuple[Any, ...], ...]
    cells: dict[tuple[Any, tuple[Any, ...]], str]

    def column(self, stratum: tuple[Any, ...]) -> list[str]:
        """The conditions of one stratum, in level order."""
        return [self.cells[(level, stratum)] for level in self.levels]

    def stratum_label(self, stratum: tuple[Any, ...]) -> str:
        return ", ".join(
            f"{name}={format_level(v)}" for name, v in zip(self.others, stratum, strict=True)
        )

    def levels_label(self) -> str:
        return " vs ".join(format_level(level) for level in self.levels)


@dataclass(frozen=True)
class Blocks:
    """One comparison's complete blocks (blocks x treatments), the messages of the runs it lacked
    and how many blocks that cost; ``columns`` names the treatments (conditions or levels)."""

    label: str
    values: np.ndarray
    dropped: list[str]
    n_dropped: int
    columns: tuple[str, ...]


def format_level(value: Any) -> str:
    """``0.5`` -> ``0.5``, ``0.0`` -> ``0``, strings unchanged."""
    return format(value, "g") if isinstance(value, (int, float, np.number)) else str(value)


def factor_design(
    df: pd.DataFrame,
    dataset: str,
    conditions: Sequence[str],
    factor: str,
    parameters: Sequence[str],
) -> FactorDesign:
    """The crossed design of ``conditions`` in ``dataset`` about ``factor`` (ValueError if not)."""
    if factor not in df.columns:
        raise ValueError(f"factor: results have no column {factor!r}")
    values = {c: _condition_parameters(df, dataset, c, [factor, *parameters]) for c in conditions}
    others = tuple(
        p
        for p in parameters
        if p != factor and p in df.columns and len({values[c][p] for c in conditions}) > 1
    )
    levels = tuple(dict.fromkeys(values[c][factor] for c in conditions))
    if len(levels) < 2:
        raise ValueError(
            f"factor: {factor!r} takes one value ({format_level(levels[0])}) among conditions "
            f"{list(conditions)} in {dataset}; a test about it needs >= 2"
        )
    cells: dict[tuple[Any, tuple[Any, ...]], str] = {}
    for c in conditions:
        key = (values[c][factor], tuple(values[c][p] for p in others))
        if key in cells:
            raise ValueError(
                f"conditions: {cells[key]!r} and {c!r} have the same {factor} and other factors "
                f"({', '.join(others) or 'none'}) in {dataset}"
            )
        cells[key] = c
    strata = tuple(dict.fromkeys(stratum for _, stratum in cells))
    design = FactorDesign(factor, levels, others, strata, cells)
    for stratum in strata:
        for level in levels:
            if (level, stratum) not in cells:
                raise ValueError(
                    f"conditions: no condition with {factor}={format_level(level)} at "
                    f"{design.stratum_label(stratum)} in {dataset}; the design must be crossed"
                )
    return design


def _condition_parameters(
    df: pd.DataFrame, dataset: str, condition: str, columns: Sequence[str]
) -> dict[str, Any]:
    rows = df[(df["dataset"] == dataset) & (df["condition"] == condition)]
    if rows.empty:
        raise ValueError(f"conditions: {condition!r} has no rows for dataset {dataset!r}")
    found = {}
    for column in columns:
        if column not in df.columns:
            continue
        distinct = rows[column].dropna().unique()
        if len(distinct) > 1:
            raise ValueError(
                f"results.{column}: condition {condition!r} in {dataset} has several values "
                f"{sorted(map(str, distinct))}"
            )
        found[column] = distinct[0] if len(distinct) else None
    return found


def block_matrices(cells: np.ndarray, blocking: str) -> list[np.ndarray]:
    """Block matrices from ``cells`` of shape ``(..., seeds, levels, strata)``.

    ``pooled``: one ``(..., seeds * strata, levels)`` matrix (seed-major); ``marginal``: one
    ``(..., seeds, levels)`` matrix of means over the strata; ``stratified``: one
    ``(..., seeds, levels)`` matrix per stratum. Leading axes (e.g. simulated replicates) are kept.
    """
    if blocking not in BLOCKINGS:
        raise ValueError(f"blocking: {blocking!r} is not one of {', '.join(BLOCKINGS)}")
    cells = np.asarray(cells, dtype=float)
    *lead, seeds, levels, strata = cells.shape
    if blocking == "stratified":
        return [cells[..., s] for s in range(strata)]
    if blocking == "marginal":
        return [cells.mean(axis=-1)]
    pooled = np.swapaxes(cells, -1, -2).reshape(*lead, seeds * strata, levels)
    return [pooled]


def factor_blocks(
    df: pd.DataFrame, dataset: str, design: FactorDesign, metric: str, blocking: str, test: str = ""
) -> list[Blocks]:
    """A factor test's comparisons: one if pooled or marginal, one per stratum if stratified.

    A missing run removes the blocks it belongs to: one block under ``pooled`` and
    ``stratified``, the whole seed under ``marginal``.
    """
    if blocking not in BLOCKINGS:
        raise ValueError(f"blocking: {blocking!r} is not one of {', '.join(BLOCKINGS)}")
    tables, messages = [], []
    for stratum in design.strata:
        wide, lost = paired_values(df, dataset, design.column(stratum), metric, test, False)
        tables.append(wide)
        messages.append(lost)
    seeds = sorted(set().union(*(t.index for t in tables)))
    cells = np.stack([t.reindex(seeds).to_numpy() for t in tables], axis=-1)  # seeds x lvl x str
    head = f"{design.factor}: {design.levels_label()}"
    over = ", ".join(design.others)
    levels = tuple(f"{design.factor}={format_level(v)}" for v in design.levels)
    if blocking == "stratified":
        labels = [
            head + (f" at {design.stratum_label(s)}" if design.others else "")
            for s in design.strata
        ]
    elif blocking == "pooled":
        labels = [f"{head} (blocks: seed x {over})" if over else head]
    else:
        labels = [f"{head} (blocks: seed; mean over {over})" if over else head]
    lost = messages if blocking == "stratified" else [sum(messages, [])]
    out = []
    for label, matrix, dropped in zip(labels, block_matrices(cells, blocking), lost, strict=True):
        complete = ~np.isnan(matrix).any(axis=1)
        out.append(Blocks(label, matrix[complete], dropped, int((~complete).sum()), levels))
    return out
