"""FusedRMSprop: Keras' RMSprop rule (epsilon inside the root), against closed forms and Keras."""

import keras
import numpy as np
import pytest
import torch

from monetk.optimizers import FusedRMSprop

SHAPES = [(3, 3, 4, 8), (8,), (5, 2)]


def _variables(rng):
    return [keras.Variable(rng.normal(size=s).astype("float32")) for s in SHAPES]


def _grads(rng):
    return [torch.as_tensor(rng.normal(size=s).astype("float32")) for s in SHAPES]


@pytest.mark.parametrize("initial", [0.0, 1.0])
def test_two_steps_follow_the_closed_form(initial):
    """v_0 = 0 (Keras, PyTorch) or 1 (TF1's RMSPropOptimizer: ``ms`` starts at ones)."""
    rng = np.random.default_rng(0)
    lr, rho, eps = 1e-2, 0.9, 1e-7
    variables = _variables(rng)
    theta = [v.numpy().astype(np.float64) for v in variables]
    optimizer = FusedRMSprop(learning_rate=lr, rho=rho, epsilon=eps,
                             initial_accumulator=initial)
    velocity = [np.full_like(t, initial) for t in theta]
    for _ in range(2):
        grads = _grads(rng)
        with torch.no_grad():
            optimizer.apply(grads, variables)
        for i, g in enumerate(grads):
            g = g.numpy().astype(np.float64)
            velocity[i] = rho * velocity[i] + (1 - rho) * g**2
            theta[i] = theta[i] - lr * g / np.sqrt(velocity[i] + eps)
    for v, t in zip(variables, theta, strict=True):
        np.testing.assert_allclose(v.numpy(), t, rtol=1e-5, atol=1e-6)
    assert int(optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize("options", [{}, {"momentum": 0.5}, {"centered": True},
                                     {"learning_rate": keras.optimizers.schedules.ExponentialDecay(
                                         1e-2, decay_steps=3, decay_rate=0.5)}])
def test_matches_keras_rmsprop_over_many_steps(options):
    rng = np.random.default_rng(1)
    ours = _variables(rng)
    theirs = [keras.Variable(v.numpy()) for v in ours]
    kwargs = {"learning_rate": 1e-2, "rho": 0.9, "epsilon": 1e-10, **options}
    fused, reference = FusedRMSprop(**kwargs), keras.optimizers.RMSprop(**kwargs)
    for _ in range(20):
        grads = _grads(rng)
        with torch.no_grad():
            fused.apply(grads, ours)
            reference.apply([g.clone() for g in grads], theirs)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-5, atol=1e-6)


def test_state_loads_into_keras_rmsprop_and_back():
    rng = np.random.default_rng(2)
    variables = _variables(rng)
    fused = FusedRMSprop(learning_rate=1e-3)
    with torch.no_grad():
        fused.apply(_grads(rng), variables)
    reference = keras.optimizers.RMSprop(learning_rate=1e-3)
    reference.build(variables)
    store = {}
    fused.save_own_variables(store)  # what Keras' checkpoints write and read
    reference.load_own_variables(store)
    for a, b in zip(fused.variables, reference.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(fused))
    assert isinstance(restored, FusedRMSprop) and restored.get_config() == fused.get_config()


def test_initial_accumulator_survives_the_config_round_trip():
    optimizer = FusedRMSprop(learning_rate=1e-4, rho=0.9, epsilon=1e-10, initial_accumulator=1.0)
    restored = FusedRMSprop.from_config(optimizer.get_config())
    assert restored.initial_accumulator == 1.0
    assert FusedRMSprop.from_config(FusedRMSprop().get_config()).initial_accumulator == 0.0


@pytest.mark.parametrize("initial", [0.0, 1.0])
def test_run_config_sets_the_accumulator_start(initial):
    from monetk.config import resolve
    from monetk.experiment import build_optimizer

    optimizer = build_optimizer(resolve({"train": {"rmsprop_initial": initial}})["train"])
    variables = [keras.Variable(np.ones((2, 3), dtype="float32"))]
    optimizer.build(variables)
    np.testing.assert_array_equal(optimizer._velocities[0].numpy(), np.full((2, 3), initial))


# --- WarmupDecay: the learning-rate schedule (train.warmup_steps, lr_decay, lr_final_ratio) -----

def _schedule_by_hand(t, lr=1e-3, warmup=10, decay="cosine", steps=100, final=0.1):
    """The formula as the config comment states it, in plain Python floats."""
    import math

    factor = min(1.0, (t + 1) / warmup) if warmup else 1.0
    if decay == "cosine":
        factor *= final + (1 - final) * (1 + math.cos(math.pi * min(t, steps) / steps)) / 2
    return lr * factor


@pytest.mark.parametrize(("warmup", "decay"), [(10, "cosine"), (0, "cosine"), (10, "none")])
def test_the_schedule_is_the_stated_formula(warmup, decay):
    from monetk.optimizers import WarmupDecay

    schedule = WarmupDecay(1e-3, warmup, decay, 100, 0.1)
    for t in (0, 4, 9, 10, 50, 99, 100, 150):
        expected = _schedule_by_hand(t, warmup=warmup, decay=decay)
        assert float(schedule(t)) == pytest.approx(expected, rel=1e-6), t
    # hand-worked: step 0 of a 10-step warm-up is lr / 10; a cosine to 0.1 ends at 1e-4
    assert float(WarmupDecay(1e-3, 10, "none", 100)(0)) == pytest.approx(1e-4)
    assert float(WarmupDecay(1e-3, 0, "cosine", 100, 0.1)(100)) == pytest.approx(1e-4)
    assert float(WarmupDecay(1e-3, 0, "cosine", 100, 0.1)(50)) == pytest.approx(5.5e-4)


def test_the_optimizer_follows_the_schedule_and_saves_it():
    from monetk.experiment import build_optimizer
    from monetk.optimizers import WarmupDecay

    train = {"optimizer": "adam", "learning_rate": 1e-3, "epsilon": 1e-7, "warmup_steps": 4,
             "lr_decay": "none", "lr_final_ratio": 0.0, "max_steps": 100}
    optimizer = build_optimizer(train)
    assert isinstance(optimizer._learning_rate, WarmupDecay)
    variable = keras.Variable(np.ones(3, dtype="float32"))
    rates = []
    for _ in range(5):
        rates.append(float(optimizer.learning_rate))
        optimizer.apply([torch.ones(3)], [variable])
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert restored._learning_rate.get_config() == optimizer._learning_rate.get_config()
    constant = build_optimizer({**train, "warmup_steps": 0})
    assert not isinstance(constant._learning_rate, WarmupDecay)


def test_a_saved_model_with_a_schedule_loads_after_importing_the_model_alone(tmp_path):
    """A model.keras whose optimizer has the schedule loads with only monetk.model imported (the
    schedule registers itself through it), in a fresh interpreter."""
    import os
    import subprocess
    import sys

    code = ("import monetk.model, keras; "
            "print(keras.saving.get_registered_object('monetk>WarmupDecay').__name__, "
            "keras.saving.get_registered_object('monetk>FusedRMSprop').__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "KERAS_BACKEND": "torch"})
    assert done.stdout.split() == ["WarmupDecay", "FusedRMSprop"]
