"""``python -m monetk.data COMMAND``: the data commands. ``fetch``: download DeepMind's files
(:mod:`monetk.data.fetch`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from monetk.data import fetch


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (one subcommand per data command)."""
    parser = argparse.ArgumentParser(prog="python -m monetk.data")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fetch.add_arguments(commands.add_parser(
        "fetch", help="download DeepMind's multi_object_datasets files into data/",
        description=fetch.DESCRIPTION))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; return the exit status."""
    return fetch.run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
