"""How numbers are printed in report tables: every computed number with the same count of
significant digits (trailing zeros kept: ``0.300``, not ``0.3``), p-values never as a bare 0, and
the paper's numbers as the paper prints them."""

from __future__ import annotations

import math

#: Below this a p-value is printed as "< 1e-300" (float64 survival functions reach ~1e-308).
P_FLOOR = 1e-300


def format_p(p: float | None) -> str:
    """A p-value for a table with 3 significant digits: ``0.320``, ``0.0391``, ``1.60e-23``,
    ``< 1e-300``; ``n/a`` for NaN.

    A p-value of exactly 0 can only come from underflow, so it prints as ``< 1e-300`` too.
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    p = float(p)
    if p < P_FLOOR:
        return f"< {P_FLOOR:.0e}"
    if p >= 1e-3:
        return format_number(p)
    return f"{p:.2e}"


def format_paper_p(p: float | None) -> str:
    """A p-value quoted from the paper, with the paper's digits (``0.019``, ``1.7e-22``); a
    printed 0 stays ``0 (as printed)``; ``-`` if absent."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return "0 (as printed)" if p == 0 else f"{float(p):g}"


def format_number(x: float | None, digits: int = 3) -> str:
    """A statistic or metric with ``digits`` significant digits, trailing zeros kept (``0.300``,
    ``12.5``, ``1.23e+04``), a whole number below ``10**digits`` as it is (``0``, ``20``, a rank
    sum W); ``n/a`` for missing values."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    x = float(x)
    if x.is_integer() and abs(x) < 10**digits:
        return str(int(x))
    return f"{x:#.{digits}g}".rstrip(".")
