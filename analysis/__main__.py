"""``python -m analysis SPEC.yaml RESULTS.csv --out DIR [--profile NAME] [--set KEY=VALUE]``.

The spec is read by the runner's loader (``extends``, profiles and ``--set`` as ``runner.py``
reads them). Exit status: 0 the report was written (comparisons that cannot be computed are
marked in it); 2 the spec or the results table is invalid: every problem is printed and nothing
is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from analysis.report import write_report
from monetk_runner.expand import load_spec
from monetk_runner.spec import SpecError


def main(argv: Sequence[str] | None = None) -> int:
    """Load the spec with the runner's ``load_spec``, write the report, print what was written."""
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    parser.add_argument("spec", help="spec YAML file (as given to runner.py)")
    parser.add_argument("results", help="results.csv written by the runner")
    parser.add_argument("--out", required=True, help="folder for report.md, tables and figures")
    parser.add_argument("--profile", default=None, help="spec profile (default: paper, if defined)")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a spec value, as runner.py --set (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec, args.profile, args.sets)
    except SpecError as error:
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
