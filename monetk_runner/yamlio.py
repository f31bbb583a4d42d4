"""YAML reading for specs and ``--set`` values: safe_load plus two fixes of PyYAML's YAML 1.1 rules.

- Floats as YAML 1.2 writes them: PyYAML reads ``1e-4`` and ``1e10`` as strings; here they are
  floats (``--set defaults.train.learning_rate=1e10`` must be a number).
- Duplicate keys in one mapping are an error naming the line, not a silent override.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# A float with a dot or an exponent (YAML 1.2 core schema); plain integers stay integers.
_FLOAT = re.compile(
    r"^[-+]?(?:[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?"
    r"|\.[0-9]+(?:[eE][-+]?[0-9]+)?"
    r"|[0-9]+[eE][-+]?[0-9]+)$"
)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice."""


class SpecLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 floats and duplicate-key detection."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise DuplicateKeyError(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r} in one mapping"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


SpecLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "0123456789-+.":
    SpecLoader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:float", _FLOAT)
    )


def load_text(text: str) -> Any:
    """Parse YAML text with :class:`SpecLoader`."""
    return yaml.load(text, Loader=SpecLoader)  # SpecLoader is a SafeLoader


def load_file(path: str | Path) -> Any:
    """Parse a YAML file with :class:`SpecLoader`."""
    return load_text(Path(path).read_text(encoding="utf-8"))
