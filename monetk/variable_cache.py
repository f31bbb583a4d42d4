"""Per-variable values (torch tensors, optimizer slots) looked up once, not every step.

``keras.Variable.value`` and an optimizer's slot look-up are Python properties with a few
microseconds of bookkeeping each; over ~60 variables and several look-ups per training step that is
host time a GPU step waits for. Keras assigns variables in place, so the tensors stay valid while
the variables are the same objects.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any


class PerVariableCache:
    """``cache(variables)`` returns one list per getter, ``[getter(v) for v in variables]``,
    recomputed only when ``variables`` are not the same objects, in the same order, as at the
    last call. A plain object on purpose: Keras tracks variables held in lists and dicts
    assigned to a layer or optimizer attribute as that object's own."""

    def __init__(self, *getters: Callable[[Any], Any]):
        self._getters = getters
        self._variables: tuple = ()
        self._values: tuple[list, ...] = tuple([] for _ in getters)

    def __call__(self, variables: Sequence) -> tuple[list, ...]:
        if (len(self._variables) != len(variables)
                or any(map(operator.is_not, self._variables, variables))):
            self._variables = tuple(variables)
            self._values = tuple([getter(v) for v in variables] for getter in self._getters)
        return self._values
