"""Running means of the loss terms (Eq. 6) for ``fit``'s logs, in one Keras metric.

One ``keras.metrics.Mean`` per term costs five sets of small host-side operations every step
(0.65 ms on this project's 2-vCPU VM, against 0.03 ms for this class; issue 6's host-bound
steps take 15-25 ms); keeping the five sums in one vector makes the update one stack and two
in-place adds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import torch


@keras.saving.register_keras_serializable(package="monetk")
class TermMeans(keras.metrics.Metric):
    """Means over the steps since the last reset of the named scalar terms; ``result()`` is a
    dict ``{name: mean}`` (Keras puts each entry in the logs under its own name). Like
    ``keras.metrics.Mean``, the mean of no steps is 0."""

    def __init__(self, names: Sequence[str], name: str = "terms", **kwargs):
        super().__init__(name=name, **kwargs)
        self.names = tuple(names)
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f"TermMeans: names must be distinct and not empty, got {names}")
        self.totals = self.add_variable(shape=(len(self.names),), initializer="zeros",
                                        name="totals")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, terms: Mapping[str, torch.Tensor]) -> None:
        """Add one step's scalar ``terms`` (each name must be present)."""
        with torch.no_grad():
            values = torch.stack([terms[name] for name in self.names]).float()
            self.totals.value.add_(values.to(self.totals.value.device))
            self.count.value.add_(1.0)

    def result(self) -> dict[str, torch.Tensor]:
        means = self.totals.value / self.count.value.clamp_min(1.0)
        return dict(zip(self.names, means.unbind(), strict=True))

    def get_config(self) -> dict:
        return {"names": list(self.names), "name": self.name}
