"""YAML reading for specs and ``--set`` values: safe_load plus two fixes of PyYAML's YAML 1.1 rules.

- Floats as YAML 1.2 writes them: PyYAML reads ``1e-4`` and ``1e10`` as strings; here they are
  floats (``--set defaults.train.learning_rate=1e10`` must be a number).
- Duplicate keys in one mapping are an error naming the line, not a silent override.
- Bounded: a text over :data:`MAX_BYTES`, nested deeper than :data:`MAX_DEPTH`, or whose aliases
  expand to more than :data:`MAX_NODES` nodes (an "alias bomb") is refused from PyYAML's event
  stream, before any Python object is built.
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


#: Limits of a spec file: size, nesting depth, and nodes after expanding every alias.
MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 1_000_000


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice."""


class TooLargeError(yaml.YAMLError):
    """A YAML text beyond the size, depth or alias-expansion limits."""


def check_bounds(text: str) -> None:
    """Raise :class:`TooLargeError` when ``text`` breaks a limit; one pass over the events,
    counting each alias as the size of what it names."""
    if len(text) > MAX_BYTES:
        raise TooLargeError(f"{len(text):,} characters, more than {MAX_BYTES:,}")
    sizes: dict[str, int] = {}
    stack: list[list] = []  # [anchor, nodes so far] of each open collection

    def close(anchor: str | None, size: int, line: int) -> None:
        if size > MAX_NODES:
            raise TooLargeError(f"line {line + 1}: expands to more than {MAX_NODES:,} nodes "
                                "(aliases of aliases)")
        if anchor is not None:
            sizes[anchor] = size
        if stack:
            stack[-1][1] += size

    for event in yaml.parse(text, Loader=SpecLoader):
        line = event.start_mark.line
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise TooLargeError(f"line {line + 1}: nested deeper than {MAX_DEPTH} levels")
            stack.append([event.anchor, 1])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            close(anchor, size, line)
        elif isinstance(event, yaml.AliasEvent):
            close(None, sizes.get(event.anchor, 1), line)
        elif isinstance(event, yaml.ScalarEvent):
            close(event.anchor, 1, line)


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
    """Parse YAML text with :class:`SpecLoader`, within the limits of :func:`check_bounds`."""
    check_bounds(text)
    return yaml.load(text, Loader=SpecLoader)  # SpecLoader is a SafeLoader


def load_file(path: str | Path) -> Any:
    """Parse a YAML file with :class:`SpecLoader`."""
    return load_text(Path(path).read_text(encoding="utf-8"))
