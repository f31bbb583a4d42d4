"""How numbers are printed in report tables: p-values never as a bare 0."""

from __future__ import annotations

import math

#: Below this a p-value is printed as "< 1e-300" (float64 survival functions reach ~1e-308).
P_FLOOR = 1e-300


def format_p(p: float | None) -> str:
    """A p-value for a table: ``0.32``, ``0.0391``, ``1.6e-23``, ``< 1e-300``; ``n/a`` for NaN.

    A p-value of exactly 0 can only come from underflow, so it prints as ``< 1e-300`` too.
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    p = float(p)
    if p < P_FLOOR:
        return f"< {P_FLOOR:.0e}"
    if p >= 1e-3:
        return f"{p:.3g}"
    return f"{p:.1e}"


def format_paper_p(p: float | None) -> str:
    """A p-value quoted from the paper: a printed 0 stays ``0 (as printed)``; ``-`` if absent."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return "0 (as printed)" if p == 0 else format_p(p)


def format_number(x: float | None, digits: int = 3) -> str:
    """A statistic or metric with ``digits`` significant digits; ``n/a`` for missing values."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    return f"{float(x):.{digits}g}"
