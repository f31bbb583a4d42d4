"""Statistics and reports for monetk's results.csv: Friedman and Wilcoxon tests as a spec
declares them, summary tables (Markdown, LaTeX, CSV) and figures. Imports no Keras or torch."""

from analysis.report import write_report
from analysis.spec_tests import run_tests, validate_tests

__all__ = ["run_tests", "validate_tests", "write_report"]
