"""``python -m analysis OUT/NAME/spec.yaml OUT/NAME/results.csv --out DIR``.

The spec is the resolved one that ``runner.py`` writes beside results.csv: plain YAML with no
``extends`` or ``profiles`` (:mod:`analysis.resolved_spec`). analysis reads it as data and checks
its ``tests``, ``paper``, ``sequential`` and ``report`` sections itself; it imports nothing of the
runner, Keras or torch. Exit status: 0 the report was written (comparisons that cannot be computed
are marked in it); 2 the spec or the results table is invalid: every problem is printed and
nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from analysis.report import write_report
from analysis.resolved_spec import SpecFileError, read_resolved_spec


def main(argv: Sequence[str] | None = None) -> int:
    """Read the resolved spec and the results, write the report, print what was written."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "spec", help="the resolved spec.yaml that runner.py writes beside results.csv "
                     "(OUT/<name>/spec.yaml; not a spec with extends or profiles)",
    )  # fmt: skip
    parser.add_argument("results", help="results.csv written by the runner")
    parser.add_argument("--out", required=True, help="folder for report.md, tables and figures")
    args = parser.parse_args(argv)
    try:
        spec = read_resolved_spec(args.spec)
    except SpecFileError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(
            f"{len(error.problems)} problem(s) in the spec; nothing was written.", file=sys.stderr
        )
        return 2
    try:
        written = write_report(spec, args.results, args.out)
    except (OSError, ValueError) as error:
        print(f"{args.results}: {error}", file=sys.stderr)
        print("The results table cannot be analysed; nothing was written.", file=sys.stderr)
        return 2
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
