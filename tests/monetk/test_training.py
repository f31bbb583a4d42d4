"""Training with fit: batch order, the stopping rule, resuming after a kill, NaN handling,
TensorBoard events, step times and the callbacks a config names."""

import io
import json
import sys
import time
import types
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from monetk import experiment
from monetk.callbacks import TIMING_KEYS, StoppingRule
from monetk.config import ConfigError, resolve
from monetk.experiment import build_model, build_optimizer, run_experiment
from monetk.pipeline import TrainBatches
from monetk.tensorboard import attention_grid


def tiny_config(tmp_path, **train):
    return resolve({
        "seed": 3,
        "data": {"image_size": 16, "num_train": 64, "num_eval": 16, "num_monitor": 16,
                 "cache_dir": str(tmp_path / "cache"), "max_objects": 3},
        "model": {"num_slots": 3, "unet_base_width": 4, "encoder_channels": [8, 8, 8, 8],
                  "encoder_mlp_hidden": 16, "latent_size": 4, "decoder_channels": 8,
                  "decoder_layers": 2},
        "train": {"optimizer": "adam", "learning_rate": 1e-3, "epsilon": 1e-8, "batch_size": 8,
                  "max_steps": 20, "check_every": 10, "checkpoint_every": 5, **train},
        "eval": {"batch_size": 8},
    })


def test_batches_depend_only_on_the_global_step():
    images = np.arange(10)[:, None, None, None].astype(np.uint8) * np.ones((1, 2, 2, 3), np.uint8)
    a = TrainBatches(images, batch_size=4, steps_per_epoch=3, seed=1)
    b = TrainBatches(images, batch_size=4, steps_per_epoch=2, seed=1)
    steps_a = []
    for epoch in range(2):
        a.epoch = epoch
        steps_a += [a[i][:, 0, 0, 0].tolist() for i in range(3)]
    steps_b = []
    for epoch in range(3):
        b.epoch = epoch
        steps_b += [b[i][:, 0, 0, 0].tolist() for i in range(2)]
    assert steps_a == steps_b
    # 5 steps of 4 = 2 passes over 10 images: each image exactly twice.
    seen = np.concatenate(steps_a[:5])
    assert np.bincount(seen, minlength=10).tolist() == [2] * 10


@pytest.mark.parametrize(
    ("previous", "current", "fires"),
    [(None, 0.0005, False),  # no previous check yet
     (0.00050, 0.00049, False),  # below l = 0.001, but MSE_t / MSE_t-1 = 0.98 (still improving)
     (0.00060, 0.00050, False),  # ratio 0.83
     (0.000500, 0.000499, True),  # below l and ratio 0.998 > 0.99
     (0.00200, 0.00199, False),  # ratio 0.995 but above l
     (0.00050, 0.00052, True)],  # below l and got worse (ratio 1.04): converged
)
def test_stopping_rule_matches_the_paper(previous, current, fires):
    rule = StoppingRule(steps_per_epoch=1, threshold=0.001, ratio=0.99)
    rule.previous_mse = previous
    assert rule.fires(current) is fires


class StubModel:
    stop_training = False


def test_stopping_rule_stops_fit_and_records_the_step():
    rule = StoppingRule(steps_per_epoch=10, threshold=0.001, ratio=0.99)
    rule.set_model(StubModel())
    for epoch, mse in enumerate([0.01, 0.0009, 0.000895]):
        assert not rule.model.stop_training
        rule.on_epoch_end(epoch, {"monitor_mse": mse, "eval_fg_ari": 0.5 + epoch})
    assert rule.stop_step == 30 and rule.at_stop == {"fg_ari": 2.5}
    assert rule.model.stop_training


def test_training_reduces_the_loss(tmp_path):
    config = tiny_config(tmp_path)
    keras.utils.set_random_seed(0)
    model = build_model(config)
    model.compile(optimizer=build_optimizer(config["train"]))
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    images[:, :8] = 40  # structure to learn: a flat top half
    history = model.fit(images, batch_size=8, epochs=80, verbose=0)
    losses, mse = history.history["loss"], history.history["mse"]
    assert losses[-1] < 0.5 * losses[0]
    assert mse[-1] < 0.7 * mse[0]


def test_run_writes_result_history_and_examples(tmp_path):
    reported = []
    result = run_experiment(tiny_config(tmp_path), tmp_path / "run",
                            progress=lambda step, max_steps, **info: reported.append(info))
    run = tmp_path / "run"
    assert result["status"] == "ok" and result["steps"] == 20
    reports = [info for info in reported if "epoch_time_s" in info]  # not those within epochs
    # Each epoch end reports its mean loss and timing; the first also its first step's time.
    assert [sorted(info) for info in reports] == (
        [["epoch_time_s", "first_step_s", "loss", "step_time_s"]]
        + [["epoch_time_s", "loss", "step_time_s"]] * 3)
    for info in reports:  # 5 steps an epoch: 4 fetch intervals, their median below the epoch
        assert 0 < info["step_time_s"] < info["epoch_time_s"] / 4
    assert result["device"].startswith("cpu (") and "torch.compile" not in result["device"]
    assert json.loads((run / "result.json").read_text()) == json.loads(json.dumps(result))
    history = pd.read_csv(run / "history.csv")
    assert history["step"].tolist() == [5, 10, 15, 20]
    assert history["time"].is_monotonic_increasing and history["step_time_s"].gt(0).all()
    assert history["loss"].tolist() == pytest.approx([info["loss"] for info in reports])
    assert history["eval_fg_ari"].notna().tolist() == [False, True, False, True]
    assert 0.0 <= result["final"]["ari"] <= 1.0 and result["final"]["n_images"] == 16
    examples = np.load(run / "attention_examples.npz")
    assert examples["masks"].shape == (8, 3, 16, 16)
    np.testing.assert_allclose(examples["masks"].sum(axis=1), 1.0, atol=1e-5)
    assert (run / "model.keras").exists() and not (run / "checkpoint").exists()
    # A finished run is not trained again.
    again = run_experiment(tiny_config(tmp_path), run)
    assert again == json.loads((run / "result.json").read_text())


@pytest.mark.parametrize("setting, cuda, expected", [
    (True, False, True), (False, True, False), ("auto", False, False), ("auto", True, True)])
def test_compile_auto_compiles_only_on_cuda(monkeypatch, tmp_path, setting, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert build_model(tiny_config(tmp_path, compile=setting)).compile_forward is expected


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_compile_setting_names_its_allowed_values(tmp_path, bad):
    with pytest.raises(ConfigError, match="train.compile: expected true, false or auto, got"):
        tiny_config(tmp_path, compile=bad)


class Killed(Exception):
    pass


def test_resume_after_interruption_reaches_the_same_weights(tmp_path):
    config = tiny_config(tmp_path, check_every=5, stop_threshold=1e-9)
    config["loss"]["beta"] = 0.5  # sampling noise must also resume identically
    straight = run_experiment(config, tmp_path / "straight")

    def kill_at_step_15(step, max_steps, **info):
        if step == 15:
            raise Killed

    with pytest.raises(Killed):
        run_experiment(config, tmp_path / "resumed", progress=kill_at_step_15)
    assert not (tmp_path / "resumed" / "result.json").exists()
    resumed = run_experiment(config, tmp_path / "resumed")
    assert resumed["final"] == straight["final"]
    a = keras.models.load_model(tmp_path / "straight" / "model.keras").get_weights()
    b = keras.models.load_model(tmp_path / "resumed" / "model.keras").get_weights()
    for wa, wb in zip(a, b, strict=False):
        np.testing.assert_array_equal(wa, wb)
    history_a, history_b = (  # all but the wall-clock columns
        pd.read_csv(tmp_path / name / "history.csv").drop(columns=list(TIMING_KEYS))
        for name in ("straight", "resumed"))
    pd.testing.assert_frame_equal(history_a, history_b)


def test_nan_loss_is_recorded_as_a_failed_run(tmp_path):
    result = run_experiment(tiny_config(tmp_path, learning_rate=1e10), tmp_path / "nan")
    assert result["status"] == "failed" and "non-finite" in result["reason"]
    assert json.loads((tmp_path / "nan" / "result.json").read_text())["status"] == "failed"


def test_continue_after_stop_records_metrics_at_the_stop(tmp_path):
    config = tiny_config(tmp_path, check_every=5, stop_threshold=10.0, stop_ratio=0.0,
                         continue_after_stop=True)
    result = run_experiment(config, tmp_path / "run")
    # The rule can first fire at the second check (it needs a previous MSE).
    assert result["stop_step"] == 10 and result["steps"] == 20 and result["continued"]
    history = pd.read_csv(tmp_path / "run" / "history.csv").set_index("step")
    assert result["at_stop"]["fg_ari"] == pytest.approx(history.loc[10, "eval_fg_ari"])


@pytest.mark.slow
def test_a_compiled_training_step_matches_the_eager_one(tmp_path):
    # torch.compile of the forward and loss (train.compile) must not change the maths: the same
    # weights, batch and noise give the same loss and gradients through fit. ~1 min of compiling.
    config = tiny_config(tmp_path, compile=False)
    models = []
    for compile_forward in (False, True):
        model = build_model(resolve({**config, "train": {**config["train"],
                                                         "compile": compile_forward}}))
        model.compile(optimizer=build_optimizer(config["train"]))
        if models:
            model.set_weights(models[0].get_weights())
        models.append(model)
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    losses = [m.fit(images, batch_size=8, epochs=1, verbose=0, shuffle=False).history["loss"][0]
              for m in models]
    assert models[1].compile_forward and not models[0].compile_forward
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    for eager, compiled in zip(models[0].trainable_weights, models[1].trainable_weights,
                               strict=True):
        g_eager, g_compiled = eager.value.grad, compiled.value.grad
        scale = float(g_eager.abs().max()) + 1e-12
        assert float((g_compiled - g_eager).abs().max()) / scale < 1e-3, eager.path


def _diverging_after_step_10(train_cfg):
    """Adam whose learning rate jumps to 1e30 after step 10 (a built-in, saved schedule)."""
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([10], [1e-3, 1e30])
    return keras.optimizers.Adam(learning_rate=schedule)


def test_a_divergence_between_checks_is_never_resumed_into_an_ok_run(tmp_path, monkeypatch):
    # The paper profile's case (issue 21): checkpoints every 5 steps, checks every 10, and the
    # loss turns non-finite in steps 11-15, an epoch without a check. The state at step 15 is
    # not saved; the retry (--retry-failed deletes result.json) resumes from step 10, the last
    # finite checkpoint, says so, and diverges again: failed, never ok with NaN weights.
    monkeypatch.setattr(experiment, "build_optimizer", _diverging_after_step_10)
    config, run_dir = tiny_config(tmp_path), tmp_path / "run"
    first = run_experiment(config, run_dir)
    assert first["status"] == "failed" and first["reason"].endswith("at step 15"), first
    assert first["resumed_from"] is None
    saved = sorted(p.name for p in (run_dir / "checkpoint").glob("ckpt-*.keras"))
    assert saved == ["ckpt-10.keras", "ckpt-5.keras"]
    (run_dir / "result.json").unlink()
    retry = run_experiment(config, run_dir)
    assert retry["status"] == "failed" and retry["resumed_from"] == 10
    assert retry["reason"].endswith("at step 15") and retry["set_aside"] == []


def test_a_non_finite_or_damaged_checkpoint_is_set_aside_and_the_run_falls_back(tmp_path):
    # A store written before the guard: the newest checkpoint (step 10) holds NaN weights and
    # says stop_training, which used to skip fit and write an ok result. It is set aside (kept,
    # renamed), and the run resumes from step 5 to the numbers of an uninterrupted run.
    config = tiny_config(tmp_path)
    straight = run_experiment(config, tmp_path / "straight")

    def kill_at_step_10(step, max_steps, **info):
        if step == 10:
            raise Killed

    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        run_experiment(config, run_dir, progress=kill_at_step_10)
    checkpoint = run_dir / "checkpoint"
    model = keras.models.load_model(checkpoint / "ckpt-10.keras")
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    model.save(checkpoint / "ckpt-10.keras")
    for name in ("state.json", "state-10.json"):
        state = json.loads((checkpoint / name).read_text())
        (checkpoint / name).write_text(json.dumps({**state, "stop_training": True}))
    resumed = run_experiment(config, run_dir)
    assert resumed["status"] == "ok" and resumed["resumed_from"] == 5
    assert len(resumed["set_aside"]) == 1 and "ckpt-10.keras: non-finite" in resumed["set_aside"][0]
    assert resumed["final"] == straight["final"]
    [kept] = (run_dir / "set-aside").glob("*-ckpt-10.keras")  # kept after checkpoint/ went
    assert np.isnan(keras.models.load_model(kept, compile=False).get_weights()[0]).all()
    # a truncated newest checkpoint falls back the same way
    with pytest.raises(Killed):
        run_experiment(config, tmp_path / "run2", progress=kill_at_step_10)
    newest = tmp_path / "run2" / "checkpoint" / "ckpt-10.keras"
    newest.write_bytes(newest.read_bytes()[:100])
    resumed = run_experiment(config, tmp_path / "run2")
    assert resumed["resumed_from"] == 5 and "cannot be loaded" in resumed["set_aside"][0]
    assert resumed["final"] == straight["final"]


def test_a_resumed_run_keeps_the_thread_count_it_started_with(tmp_path, monkeypatch):
    # --workers auto gives a resumed run the threads of however many runs are left; the count
    # it started with is in its checkpoint and wins (1 vs 2 threads give different numbers).
    monkeypatch.setenv("MONETK_THREADS", "1")
    config = tiny_config(tmp_path, threads=0)

    def kill_at_step_10(step, max_steps, **info):
        if step == 10:
            raise Killed

    before = torch.get_num_threads()
    try:
        with pytest.raises(Killed):
            run_experiment(config, tmp_path / "run", progress=kill_at_step_10)
        monkeypatch.setenv("MONETK_THREADS", "2")
        result = run_experiment(config, tmp_path / "run")
    finally:
        torch.set_num_threads(before)
    assert result["resumed_from"] == 10 and result["device"] == "cpu (1 threads)"
    assert result["threads"] == 1 and result["machine"]  # the results.csv columns


def test_tensorboard_events_equal_the_history_and_a_resumed_run_shows_each_step_once(
        tmp_path, tensorboard_history):
    # Checks every 5 steps, checkpoints every 10: killed at step 15, the run resumes from step
    # 10, and the killed attempt's events of step 15 must not show beside the resumed ones.
    config = tiny_config(tmp_path, check_every=5, checkpoint_every=10)
    run_dir = tmp_path / "run"

    def kill_at_step_15(step, max_steps, **info):
        if step == 15:
            raise Killed

    with pytest.raises(Killed):
        run_experiment(config, run_dir, progress=kill_at_step_15)
    killed = pd.read_csv(run_dir / "history.csv").set_index("step")
    assert killed.index.tolist() == [5, 10, 15]
    resumed_at = time.time()
    assert run_experiment(config, run_dir)["resumed_from"] == 10
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2

    events = tensorboard_history(run_dir / "tensorboard", run_dir / "history.csv")
    images = events.Images("check/attention")
    assert [image.step for image in images] == [5, 10, 15, 20]
    # 8 rows (examples) of 5 tiles (image, reconstruction, K = 3 masks) of 16 + 1 pixels
    assert (images[-1].height, images[-1].width) == (8 * 17, 5 * 17)
    shown = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)))
    examples = np.load(run_dir / "attention_examples.npz")  # the same weights as step 20
    expected = attention_grid({key: examples[key] for key in ("image", "reconstruction", "masks")})
    assert np.abs(shown.astype(int) - np.round(expected * 255)).max() <= 1

    history = pd.read_csv(run_dir / "history.csv").set_index("step")
    assert history.loc[[5, 10], "time"].tolist() == killed.loc[[5, 10], "time"].tolist()
    assert (history.loc[[5, 10], "time"] < resumed_at).all()
    assert (history.loc[[15, 20], "time"] > resumed_at).all()
    assert (history["step_time_s"] > 0).all()


class BatchCounter(keras.callbacks.Callback):
    """Counts the training steps in a batch hook (which EpochCallbackList runs only when some
    callback implements it) and writes the count to ``path`` when training ends."""

    def __init__(self, path):
        super().__init__()
        self.path, self.steps = Path(path), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_train_end(self, logs=None):
        self.path.write_text(str(self.steps))


def test_callbacks_the_config_names_run_with_their_batch_hooks(tmp_path, monkeypatch):
    module = types.ModuleType("probe_callbacks")
    module.BatchCounter = BatchCounter
    monkeypatch.setitem(sys.modules, "probe_callbacks", module)
    config = tiny_config(tmp_path, max_steps=10, check_every=5, tensorboard=False, callbacks=[
        {"class": "keras.callbacks.CSVLogger", "args": {"filename": "{run_dir}/keras_log.csv"}},
        {"class": "probe_callbacks.BatchCounter", "args": {"path": "{run_dir}/steps.txt"}}])
    run_dir = tmp_path / "run"
    assert run_experiment(config, run_dir)["status"] == "ok"
    assert (run_dir / "steps.txt").read_text() == "10"
    history = pd.read_csv(run_dir / "history.csv")
    logged = pd.read_csv(run_dir / "keras_log.csv")
    assert logged["epoch"].tolist() == [0, 1]
    for column in ("loss", "step_time_s", "eval_fg_ari"):
        np.testing.assert_allclose(logged[column], history[column], rtol=1e-6)
    assert not (run_dir / "tensorboard").exists()
