"""RMSprop with Keras' update rule in fewer, fused foreach operations.

Keras' torch RMSprop (``keras.src.backend.torch.optimizers.torch_rmsprop``) looks up every
variable's ``.value`` and slot index in Python each step and runs eight foreach operations, four
of them out of place. On a GPU the step is host-bound (issue 6), so this subclass caches the
tensor lists once and applies the same rule (Keras 3 and TF1 place epsilon inside the root)

    v <- rho * v + (1 - rho) * g^2,    theta <- theta - lr * g / sqrt(v + epsilon)

with ``addcmul_``/``addcdiv_``: six foreach operations, one temporary list, no per-variable
Python. Momentum and the centred variant keep Keras' code path. Slot variables, their names and
the saved state are Keras' own, so checkpoints load into either class.

``initial_accumulator`` is v_0, the value every velocity starts at: 0 in Keras and PyTorch, 1 in
TF1's ``RMSPropOptimizer`` (its ``ms`` slot uses ``ones_initializer``), the original MONet's.
"""

from __future__ import annotations

import math

import keras
import torch
from keras.src.backend.torch.optimizers.torch_rmsprop import RMSprop as _TorchRMSprop

from monetk.variable_cache import PerVariableCache


@keras.saving.register_keras_serializable(package="monetk")
class FusedRMSprop(_TorchRMSprop):
    """``keras.optimizers.RMSprop`` on the torch backend with a fused update (see module)."""

    def __init__(self, *args, initial_accumulator: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial_accumulator = float(initial_accumulator)
        self._tensors = PerVariableCache(
            lambda v: v.value, lambda v: self._velocities[self._get_variable_index(v)].value)

    def build(self, var_list):
        """Keras' slots, then every velocity set to ``initial_accumulator`` (a saved state that
        is loaded afterwards overwrites it)."""
        if self.built:
            return
        super().build(var_list)
        if self.initial_accumulator:
            for velocity in self._velocities:
                velocity.assign(keras.ops.full_like(velocity, self.initial_accumulator))

    def get_config(self) -> dict:
        return {**super().get_config(), "initial_accumulator": self.initial_accumulator}

    def _parallel_update_step(self, grads, variables, learning_rate):
        if self.momentum > 0 or self.centered:
            return super()._parallel_update_step(grads, variables, learning_rate)
        params, velocities = self._tensors(variables)
        rho = self.rho
        torch._foreach_mul_(velocities, rho)
        torch._foreach_addcmul_(velocities, grads, grads, value=1 - rho)
        denominators = torch._foreach_add(velocities, self.epsilon)
        torch._foreach_sqrt_(denominators)
        # lr is a device tensor (Keras' variable or a schedule's value): no host sync to read it.
        lr = keras.ops.convert_to_tensor(learning_rate).to(params[0].dtype)
        torch._foreach_div_(denominators, lr)
        torch._foreach_addcdiv_(params, grads, denominators, value=-1.0)
        return None


@keras.saving.register_keras_serializable(package="monetk")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(t) = learning_rate * min(1, (t + 1) / warmup_steps) * d(t)`` at optimizer step ``t``
    (0 at the first update): a linear warm-up (none when ``warmup_steps`` is 0), then ``d = 1``
    (``decay="none"``) or a cosine from 1 down to ``final_ratio`` at ``max_steps`` and flat after
    it: ``d(t) = r + (1 - r) (1 + cos(pi min(t, T) / T)) / 2`` (``decay="cosine"``)."""

    def __init__(self, learning_rate: float, warmup_steps: int, decay: str, max_steps: int,
                 final_ratio: float = 0.0):
        self.learning_rate, self.warmup_steps = float(learning_rate), int(warmup_steps)
        self.decay, self.max_steps, self.final_ratio = decay, int(max_steps), float(final_ratio)

    def __call__(self, step):
        t = keras.ops.cast(step, "float32")
        factor = keras.ops.convert_to_tensor(1.0)
        if self.warmup_steps:
            factor = keras.ops.minimum(1.0, (t + 1.0) / self.warmup_steps)
        if self.decay == "cosine":
            progress = keras.ops.minimum(t, float(self.max_steps)) / self.max_steps
            cosine = (1.0 + keras.ops.cos(math.pi * progress)) / 2.0
            factor = factor * (self.final_ratio + (1.0 - self.final_ratio) * cosine)
        return self.learning_rate * factor

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps,
                "decay": self.decay, "max_steps": self.max_steps, "final_ratio": self.final_ratio}
