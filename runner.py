"""Run an experiment spec: ``python runner.py specs/section3_2.yaml --profile smoke``.

See ``python runner.py --help`` and :mod:`monetk_runner.cli`. ``load_spec`` gives the checked,
resolved spec as a dict (what the runner writes to ``OUT/<name>/spec.yaml``, and
``python -m analysis`` reads).
"""

import sys

from monetk_runner.cli import main
from monetk_runner.expand import load_spec
from monetk_runner.spec import SpecError

__all__ = ["load_spec", "main", "SpecError"]

if __name__ == "__main__":
    sys.exit(main())
