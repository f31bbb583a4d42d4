"""``python -m analysis SPEC.yaml RESULTS.csv --out DIR [--profile NAME]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import runner
from analysis.report import write_report


def main(argv: Sequence[str] | None = None) -> int:
    """Load the spec with ``runner.load_spec``, write the report, print what was written."""
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    parser.add_argument("spec", help="spec YAML file")
    parser.add_argument("results", help="results.csv written by the runner")
    parser.add_argument("--out", required=True, help="folder for report.md, tables and figures")
    parser.add_argument("--profile", default=None, help="spec profile (e.g. paper, demo, smoke)")
    args = parser.parse_args(argv)
    spec = runner.load_spec(args.spec, profile=args.profile)
    if args.profile is not None and spec.get("profile") is None:
        spec = {**spec, "profile": args.profile}
    for name, path in write_report(spec, args.results, args.out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
