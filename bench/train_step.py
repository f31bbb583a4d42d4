"""Training-step benchmark: monetk through ``fit`` against its plain-PyTorch twin and the peer.

All monetk variants and the twin start from the same weights (the twin's loss is checked against
monetk's before anything is timed); the peer has its own initialisation (its architecture differs,
see :data:`bench.peer.DIFFERENCES`). Variants are interleaved over rounds
(:func:`bench.timing.interleave`); ratios are to the eager twin in NCHW, idiomatic PyTorch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import torch

from bench import peer
from bench.timing import EpochClock, StepClock, Variant, interleave, median, sync, time_loop
from bench.torch_monet import TorchMONet, twin_from_monetk
from monetk.callbacks import EpochCallbackList
from monetk.config import resolve
from monetk.data import generate_multi_dsprites
from monetk.experiment import build_model, build_optimizer
from monetk.model import MONet
from monetk.pipeline import TrainBatches

#: The CPU demo model (32 px, K = 4, ~162k parameters) and the paper's default (64 px, K = 5).
DEMO_MODEL = {"num_slots": 4, "unet_base_width": 8, "unet_blocks": 4,
              "encoder_channels": [16, 16, 32, 32], "decoder_channels": 16, "decoder_layers": 3}
REFERENCE = "twin eager"
#: Largest relative loss difference accepted between monetk and its twin before timing.
LOSS_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Case:
    """One training-step measurement: a model and batch size, and how long to measure it
    (``rounds`` of ``steps`` per variant, the first ``warmup`` of each dropped, after one
    priming call of ``prime_steps`` that compiles and warms the variants up: all of them, or
    only the compiled ones when ``prime_eager`` is False). ``diagnostics`` adds the variants that
    explain rather than compare: the channels-last twin, the epoch-clock timings of ``fit`` and
    monet-pytorch in its own configuration."""

    name: str
    image_size: int
    model: dict[str, Any]
    batch_size: int
    rounds: int = 3
    steps: int = 8
    warmup: int = 1
    prime_steps: int = 2
    prime_eager: bool = True
    diagnostics: bool = True


CASES = {
    # Host-bound like a GPU step: the default widths at 16 px and batch 1 take ~20 ms a step on
    # one CPU thread, most of it per-operation overhead (the paper's model at 64 px, batch 4, is
    # compute-bound on a CPU: ~0.45 s a step).
    "host-b1": Case("host-b1", 16, {}, 1, rounds=5, steps=40, warmup=5, prime_steps=4,
                    diagnostics=False),
    "demo-b8": Case("demo-b8", 32, DEMO_MODEL, 8),
    "default-b4": Case("default-b4", 64, {}, 4, rounds=3, steps=4),
    # ~10-20 s a step on a 2-core CPU: one measured step per variant and round; an eager step
    # needs no warm-up at this size.
    "default-b64": Case("default-b64", 64, {}, 64, rounds=2, steps=1, warmup=0,
                        prime_steps=1, prime_eager=False, diagnostics=False),
}
#: ``--quick``: the demo model, few steps, for checks of the harness itself.
QUICK_CASE = Case("demo-b8-quick", 32, DEMO_MODEL, 8, rounds=1, steps=3, warmup=1,
                  prime_steps=2, diagnostics=False)


@dataclass
class Settings:
    """Which variants are measured, and where."""

    compile: bool = True
    peer: bool = True
    mixed_precision: bool = False  # bf16 autocast, CUDA only
    device: str = "cpu"
    profile_steps: int = 3
    skipped: dict[str, str] = field(default_factory=dict)


def run_config(case: Case, compile_forward: bool, mixed_precision: bool) -> dict[str, Any]:
    """The run config (``monetk.config``) of a case."""
    return resolve({"data": {"image_size": case.image_size}, "model": dict(case.model),
                    "train": {"batch_size": case.batch_size, "compile": compile_forward,
                              "mixed_precision": mixed_precision}})


def build_monetk(config: dict[str, Any], weights_from: MONet | None = None) -> MONet:
    """A compiled-for-training monetk MONet of ``config``, optionally with another's weights."""
    model = build_model(config)
    model.compile(optimizer=build_optimizer(config["train"]))
    if weights_from is not None:
        model.set_weights(weights_from.get_weights())
    return model


def check_same_loss(model: MONet, twin: TorchMONet, images: np.ndarray) -> float:
    """Relative difference of the deterministic (z = mu) losses of monetk and its twin on
    ``images``; ValueError above :data:`LOSS_TOLERANCE`."""
    with torch.no_grad():
        ours = float(model.evaluation_terms(images)["loss"])
        device = next(twin.parameters()).device
        theirs = float(twin.loss(twin.images_to_input(torch.as_tensor(images, device=device)),
                                 False)["loss"])
    rel = abs(ours - theirs) / abs(ours)
    if not rel <= LOSS_TOLERANCE:
        raise ValueError(f"twin loss {theirs} differs from monetk's {ours} by {rel:.2e} "
                         f"(tolerance {LOSS_TOLERANCE}): not the same model")
    return rel


def _fit_steps(model: MONet, images: np.ndarray, batch_size: int, device: str,
               epoch_clock: bool) -> Callable[[int, int], list[float]]:
    def run(steps: int, warmup: int) -> list[float]:
        batches = TrainBatches(images, batch_size, steps, seed=0)
        clock = EpochClock(device) if epoch_clock else StepClock(device)
        # The callback list monetk's runs use (monetk.experiment.run_experiment).
        callbacks = EpochCallbackList([clock], add_history=True, model=model, epochs=1,
                                      steps=steps, verbose=0)
        model.fit(batches, epochs=1, verbose=0, callbacks=callbacks)
        return [clock.epoch_times[0] / steps] if epoch_clock else clock.step_times(warmup)

    return run


def _torch_steps(module: torch.nn.Module, loss: Callable, to_input: Callable,
                 images: np.ndarray, batch_size: int, train_cfg: dict[str, Any],
                 device: str) -> Callable[[int, int], list[float]]:
    optimizer = torch.optim.RMSprop(module.parameters(), lr=train_cfg["learning_rate"],
                                    alpha=train_cfg["rho"], eps=train_cfg["epsilon"])

    def step(batch: np.ndarray) -> None:
        x = to_input(torch.as_tensor(batch, device=device))
        optimizer.zero_grad(set_to_none=True)
        loss(x).backward()
        optimizer.step()

    def run(steps: int, warmup: int) -> list[float]:
        batches = TrainBatches(images, batch_size, steps, seed=0)
        return time_loop(step, (batches[i] for i in range(steps)), device, warmup)

    return run


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def build_variants(case: Case, settings: Settings, images: np.ndarray) -> tuple[list, dict]:
    """The variants of a case and facts about them (parameters, loss check, peer config)."""
    mp = settings.mixed_precision
    config = run_config(case, False, mp)
    train_cfg = config["train"]
    model = build_monetk(config)
    twin = twin_from_monetk(model)
    info: dict[str, Any] = {
        "parameters": {"monetk": model.count_params(),
                       "twin": sum(p.numel() for p in twin.parameters())},
        "loss_rel_diff_twin": check_same_loss(model, twin, images[:case.batch_size]),
    }
    dev, b = settings.device, case.batch_size
    variants = [
        Variant("monetk fit eager", _fit_steps(model, images, b, dev, False)),
        Variant(REFERENCE, _torch_steps(twin, lambda x: twin.loss(x, True, mp)["loss"],
                                        twin.images_to_input, images, b, train_cfg, dev)),
    ]
    if case.diagnostics:
        twin_cl = twin_from_monetk(model, channels_last=True)
        info["loss_rel_diff_twin_channels_last"] = check_same_loss(model, twin_cl,
                                                                   images[:case.batch_size])
        variants.append(Variant("twin eager channels_last", _torch_steps(
            twin_cl, lambda x: twin_cl.loss(x, True, mp)["loss"], twin_cl.images_to_input,
            images, b, train_cfg, dev)))
        variants.append(Variant("monetk fit eager (epoch clock)",
                                _fit_steps(model, images, b, dev, True)))
    if settings.compile:
        compiled = build_monetk(run_config(case, True, mp), weights_from=model)
        twin_c = twin_from_monetk(model)
        twin_loss = torch.compile(twin_c.loss)
        variants += [
            Variant("monetk fit compiled", _fit_steps(compiled, images, b, dev, False)),
            Variant("twin compiled", _torch_steps(
                twin_c, lambda x: twin_loss(x, True, mp)["loss"], twin_c.images_to_input,
                images, b, train_cfg, dev)),
        ]
        if case.diagnostics:
            variants.append(Variant("monetk fit compiled (epoch clock)",
                                    _fit_steps(compiled, images, b, dev, True)))
    if settings.peer:
        status = peer.peer_status()
        if status is not None:
            settings.skipped["peer"] = status
        else:
            try:
                variants += _peer_variants(case, model, images, train_cfg, dev, info)
            except peer.UnsupportedConfig as err:
                settings.skipped[f"peer at {case.name}"] = str(err)
    return variants, {"model": model, **info}


def _peer_variants(case: Case, model: MONet, images: np.ndarray, train_cfg: dict[str, Any],
                   device: str, info: dict[str, Any]) -> list[Variant]:
    builds = {"monet-pytorch (closest config)": peer.build_peer(model)}
    if case.diagnostics and case.image_size == 64 and model.num_slots == 5 and not case.model:
        builds["monet-pytorch (its own config)"] = peer.build_stock_peer()
    variants = []
    for name, module in builds.items():
        module.to(device)
        info["parameters"][name] = peer.parameter_count(module)
        variants.append(Variant(name, _torch_steps(
            module, lambda x, m=module: m(x)["loss"], peer.images_to_input, images,
            case.batch_size, train_cfg, device)))
    info["peer_differences"] = list(peer.DIFFERENCES)
    return variants


def measure_case(case: Case, settings: Settings) -> dict[str, Any]:
    """Prime every variant (timing the first, compiling, call), then interleave them."""
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    # Compile each case from scratch, as a fresh run process would: left-over graphs of another
    # image or batch size make Dynamo recompile with dynamic shapes (minutes on this CPU).
    torch._dynamo.reset()
    num_images = case.batch_size * max(case.steps, case.prime_steps, settings.profile_steps)
    images, _ = generate_multi_dsprites(num_images, case.image_size, seed=0)
    variants, info = build_variants(case, settings, images)
    model = info.pop("model")
    primed = {}
    for variant in variants:
        if case.prime_eager or "compiled" in variant.name:
            start = time.perf_counter()
            variant.run(case.prime_steps, case.prime_steps - 1)
            primed[variant.name] = time.perf_counter() - start
    graphs = _graphs()
    table = interleave(variants, case.rounds, case.steps, case.warmup, REFERENCE)
    return {**info, "batch_size": case.batch_size, "image_size": case.image_size,
            "num_slots": model.num_slots, "rounds": case.rounds, "steps": case.steps,
            "warmup": case.warmup, "variants": table,
            "priming_s": {"steps": case.prime_steps, **primed},
            "graphs_compiled_while_timing": _graphs() - graphs,
            "profile": profile_case(case, settings, model, images)}


_CLASS_ATTRIBUTE = object()


class _PhaseClock:
    """Wraps methods of objects (instance attributes shadow them) to add up their time."""

    def __init__(self, device: str):
        self.device = device
        self.totals: dict[str, float] = {}
        self._wrapped: list[tuple[object, str, object]] = []

    def wrap(self, obj: object, attr: str, phase: str) -> None:
        inner = getattr(obj, attr)
        own = vars(obj).get(attr, _CLASS_ATTRIBUTE)  # an instance attribute to put back

        def timed(*args, **kwargs):
            sync(self.device)
            start = time.perf_counter()
            out = inner(*args, **kwargs)
            sync(self.device)
            self.totals[phase] = self.totals.get(phase, 0.0) + time.perf_counter() - start
            return out

        object.__setattr__(obj, attr, timed)
        self._wrapped.append((obj, attr, own))

    def unwrap(self) -> None:
        for obj, attr, own in reversed(self._wrapped):
            if own is _CLASS_ATTRIBUTE:
                object.__delattr__(obj, attr)
            else:
                object.__setattr__(obj, attr, own)
        self._wrapped.clear()


def _phases(totals: dict[str, float], step: float, k: int) -> dict[str, float]:
    """Exclusive phase times (ms) from nested totals: attention inside forward inside loss."""
    attention = totals["attention"]
    vae = totals["forward"] - attention
    loss = totals["loss"] - totals["forward"]
    optimizer = totals["optimizer"]
    return {"attention_fwd": attention, "attention_fwd_per_pass": attention / (k - 1),
            "vae_fwd": vae, "vae_fwd_per_component": vae / k, "loss_fwd": loss,
            "backward_and_rest": step - totals["loss"] - optimizer, "optimizer": optimizer,
            "step": step}


def profile_case(case: Case, settings: Settings, model: MONet,
                 images: np.ndarray) -> dict[str, dict[str, float]]:
    """Where an eager step's time goes (ms, medians over ``profile_steps``), for monetk's
    ``train_step`` and the twin: the K-1 attention passes, the K VAE passes (encoder, decoder and
    the glue around them), the loss, backward and the optimizer."""
    device, k, b = settings.device, model.num_slots, case.batch_size
    steps = settings.profile_steps
    batches = TrainBatches(images, b, steps, seed=0)
    twin = twin_from_monetk(model)
    optimizer = torch.optim.RMSprop(twin.parameters(), lr=1e-4, alpha=0.9, eps=1e-10)
    result = {}
    for name in ("monetk", REFERENCE):
        per_step: list[dict[str, float]] = []
        for i in range(steps):
            clock = _PhaseClock(device)
            if name == "monetk":
                clock.wrap(model, "attend", "attention")
                clock.wrap(model, "forward_components", "forward")
                clock.wrap(model, "_terms_fn", "loss")
                clock.wrap(model.optimizer, "apply", "optimizer")
                batch = torch.as_tensor(batches[i], device=device)
                start = time.perf_counter()
                model.train_step(batch)
            else:
                clock.wrap(twin.unet, "forward", "attention")
                clock.wrap(twin, "forward", "forward")
                clock.wrap(twin, "loss", "loss")
                clock.wrap(optimizer, "step", "optimizer")
                start = time.perf_counter()
                x = twin.images_to_input(torch.as_tensor(batches[i], device=device))
                optimizer.zero_grad(set_to_none=True)
                twin.loss(x)["loss"].backward()
                optimizer.step()
            sync(device)
            step = time.perf_counter() - start
            clock.unwrap()
            per_step.append(_phases(clock.totals, step, k))
        result[name] = {p: 1e3 * median(s[p] for s in per_step) for p in per_step[0]}
    return result
