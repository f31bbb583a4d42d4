"""p-values are printed in scientific notation, never as a bare 0."""

import math

import pytest

from analysis.formatting import format_number, format_p, format_paper_p


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.32, "0.320"),
        (0.0390625, "0.0391"),
        (1.0, "1"),
        (1.5777218104420236e-30, "1.58e-30"),
        (1.6e-23, "1.60e-23"),
        (1e-301, "< 1e-300"),
        (0.0, "< 1e-300"),
        (math.nan, "n/a"),
    ],
)
def test_format_p(p, text):
    assert format_p(p) == text


def test_paper_p_keeps_a_printed_zero_visible():
    assert format_paper_p(0.0) == "0 (as printed)"
    assert format_paper_p(6.7e-16) == "6.7e-16"
    assert format_paper_p(math.nan) == "-"


def test_format_number_significant_digits():
    assert format_number(0.123456) == "0.123"
    assert format_number(0.3) == "0.300" and format_number(0.29) == "0.290"  # one format
    assert format_number(100) == "100" and format_number(12345.6) == "1.23e+04"
    assert format_number(math.nan) == "n/a"
