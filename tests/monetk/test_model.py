"""MONet architecture: parameter counts derived by hand, mask properties, shapes, save/load."""

import keras
import numpy as np
import pytest
import torch

from monetk.layers import AttentionUNet, BroadcastDecoder, ComponentEncoder, upsample2x
from monetk.model import MONet
from monetk.optimizers import FusedRMSprop


def count(layer) -> int:
    return sum(int(np.prod(v.shape)) for v in layer.trainable_weights)


def test_unet_parameter_count_matches_hand_derivation():
    # Down path, bias-free 3x3 convs 4->32->32->64->64->64, instance-norm affine 2*width each.
    down = 9 * (4 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 64) + 2 * (32 + 32 + 64 + 64 + 64)
    # Bottleneck MLP on the flattened 4x4x64 = 1024 skip: 1024->128->128->1024 with biases.
    mlp = (1024 * 128 + 128) + (128 * 128 + 128) + (128 * 1024 + 1024)
    # Up path: inputs are concat(h, skip): 64+64, 64+64, 64+64, 32+32, 32+32 -> 64, 64, 32, 32, 32.
    up = 9 * (128 * 64 + 128 * 64 + 128 * 32 + 64 * 32 + 64 * 32) + 2 * (64 + 64 + 32 + 32 + 32)
    head = 32 + 1
    assert down + mlp + up + head == 604_513  # docs/monet_reference.md
    assert count(AttentionUNet(64)) == 604_513


def test_encoder_and_decoder_parameter_counts_match_hand_derivation():
    # Encoder: 3x3 stride-2 convs with bias, 4->32->32->64->64; 64 px -> 4x4x64 = 1024 -> 256 -> 32.
    enc = (4 * 9 * 32 + 32) + (32 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * 9 * 64 + 64)
    enc += (1024 * 256 + 256) + (256 * 32 + 32)
    assert enc == 336_480
    assert count(ComponentEncoder(64)) == enc
    # Decoder: 16 latents + 2 coordinates -> 4 x (3x3 conv, 32) -> 1x1 conv to 4 channels.
    dec = (18 * 9 * 32 + 32) + 3 * (32 * 9 * 32 + 32) + (32 * 4 + 4)
    assert dec == 33_092
    assert count(BroadcastDecoder(64)) == dec


def test_default_model_has_the_paper_style_parameter_count_for_any_k():
    for k in (5, 7):
        assert count(MONet(num_slots=k)) == 604_513 + 336_480 + 33_092 == 974_085


def test_unet_depth_follows_image_size():
    assert AttentionUNet(64).num_blocks == 5
    assert AttentionUNet(128).num_blocks == 6
    assert AttentionUNet(32).num_blocks == 4


def small_model(**kw):
    args = dict(image_size=16, num_slots=3, unet_base_width=4, encoder_channels=(8, 8, 8, 8),
                encoder_mlp_hidden=16, latent_size=4, decoder_channels=8, decoder_layers=2)
    return MONet(**{**args, **kw})


def random_images(n=2, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_attention_masks_are_a_partition_of_unity_and_shapes_follow_k():
    model = small_model()
    x = model.standardize(random_images())
    out = model.forward_components(x)
    assert out["log_m"].shape == (2, 3, 1, 16, 16)
    assert out["x_k"].shape == (2, 3, 3, 16, 16)
    assert out["mask_logits"].shape == (2, 3, 1, 16, 16)
    assert out["mu"].shape == out["log_sigma"].shape == (2, 3, 4)
    masks = out["log_m"].exp().sum(dim=1)
    torch.testing.assert_close(masks, torch.ones_like(masks), atol=1e-5, rtol=0)


def test_last_component_takes_the_remaining_scope():
    model = small_model()
    x = model.standardize(random_images())
    log_m = model.attend(x)
    # m_K = s_{K-1} = 1 - sum_{k<K} m_k.
    rest = 1 - log_m[:, :-1].exp().sum(dim=1)
    torch.testing.assert_close(log_m[:, -1].exp(), rest, atol=1e-5, rtol=0)


def test_standardize_maps_0_255_to_value_range():
    model = small_model(value_range=(-1.0, 1.0))
    images = np.zeros((1, 16, 16, 3), np.uint8)
    images[0, 0, 0] = 255
    x = model.standardize(images)
    assert x.shape == (1, 3, 16, 16)
    assert x[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0] and x[0, 0, 1, 1].item() == -1.0


def test_beta_zero_makes_the_latent_deterministic():
    # Paper: z = mu when beta = 0, so no noise is drawn at all.
    model = small_model(beta=0.0)
    x = model.standardize(random_images())
    model._step = 7
    assert model._noise(x) is None


def test_posterior_noise_is_a_function_of_seed_and_step():
    model = small_model(beta=0.5, noise_seed=3)
    x = model.standardize(random_images())
    model._step = 7
    eps = model._noise(x)
    assert eps.shape == (2 * 3, 4)
    torch.testing.assert_close(model._noise(x), eps, atol=0, rtol=0)
    model._step = 8
    assert not torch.allclose(model._noise(x), eps)
    other_seed = small_model(beta=0.5, noise_seed=4)
    other_seed._step = 7
    assert not torch.allclose(other_seed._noise(x), eps)
    # The noise perturbs z, hence the decoded components.
    mean = model.forward_components(x)["x_k"]
    assert not torch.allclose(model.forward_components(x, eps)["x_k"], mean)


@pytest.mark.parametrize("channels", [1, 3])
def test_loss_terms_follow_eq_6_with_the_image_channels_in_eq_10(channels):
    # reconstruction "mse" (Eq. 7) + gamma * mask "mse" (Eq. 10: the masks repeated over the C
    # channels, divided by I = H * W * C), beta = 0; recomputed in numpy from the forward pass.
    model = small_model(reconstruction="mse", mask="mse", beta=0.0, gamma=0.3, channels=channels)
    images = random_images()[..., :channels]
    with torch.no_grad():
        terms = model.evaluation_terms(images)
        out = model.forward_components(model.standardize(images))
    x = model.standardize(images).numpy()
    m = out["log_m"].exp().numpy()  # [B, K, 1, H, W]
    logits = out["mask_logits"].numpy()
    m_tilde = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    x_tilde = (m * out["x_k"].numpy()).sum(axis=1)
    recon = ((x - x_tilde) ** 2).mean(axis=(1, 2, 3)).mean()
    squared = np.repeat((m - m_tilde) ** 2, channels, axis=2)  # [B, K, C, H, W]
    mask = (squared.sum(axis=(1, 2, 3, 4)) / (16 * 16 * channels)).mean()
    np.testing.assert_allclose(float(terms["recon"]), recon, rtol=1e-5)
    np.testing.assert_allclose(float(terms["mask"]), mask, rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss"]), recon + 0.3 * mask, rtol=1e-5)
    np.testing.assert_allclose(float(terms["mse"]), recon, rtol=1e-5)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_upsample_matches_nearest_interpolation_and_is_channels_last(memory_format):
    x = torch.arange(48.0).reshape(1, 4, 3, 4).contiguous(memory_format=memory_format)
    expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    up = upsample2x(x)
    torch.testing.assert_close(up, expected)
    assert up.is_contiguous(memory_format=torch.channels_last)


def test_unknown_loss_name_is_rejected_with_allowed_values():
    with pytest.raises(ValueError, match="reconstruction='l1' is not one of nll"):
        small_model(reconstruction="l1")


def test_get_config_round_trip_and_keras_save_load(tmp_path):
    model = small_model(reconstruction="mw", mask="mse", beta=0.0, gamma=0.1, sigmas=[0.11, 0.09])
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3))
    clone = MONet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    images = random_images(4)
    model.fit(images, batch_size=2, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, MONet) and loaded.get_config() == model.get_config()
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=False):
        np.testing.assert_array_equal(a, b)
    assert int(loaded.optimizer.iterations.value) == 2
    np.testing.assert_allclose(model.decompose(images)["masks"], loaded.decompose(images)["masks"])


def test_train_steps_apply_rmsprop_to_fresh_gradients_of_the_current_weights():
    # Two train_steps against gradients taken independently with torch.autograd.grad and the
    # RMSprop rule in numpy: catches gradients that accumulate across steps (no zeroing), an
    # update applied to stale tensors (a cache that outlived set_weights), or a wrong rule.
    lr, rho, eps = 1e-2, 0.9, 1e-10
    model = small_model(beta=0.0)  # z = mu: the step is deterministic
    model.compile(optimizer=FusedRMSprop(learning_rate=lr, rho=rho, epsilon=eps))
    model.set_weights([w * 0.5 for w in model.get_weights()])
    images = torch.as_tensor(random_images())
    params = [v.value for v in model.trainable_weights]
    velocity = [np.zeros(p.shape) for p in params]
    theta = [p.detach().numpy().astype(np.float64) for p in params]
    losses = []
    for _ in range(2):
        loss = model._terms(images, None, model._sigma_tensor(images.device))["loss"]
        grads = torch.autograd.grad(loss, params)
        losses.append(float(loss))
        logs = model.train_step(images)
        for i, g in enumerate(grads):
            g = g.numpy().astype(np.float64)
            velocity[i] = rho * velocity[i] + (1 - rho) * g**2
            theta[i] = theta[i] - lr * g / np.sqrt(velocity[i] + eps)
        # fit's logs: the mean of the step losses so far
        np.testing.assert_allclose(float(logs["loss"]), np.mean(losses), rtol=1e-5)
    for v, t in zip(model.trainable_weights, theta, strict=True):
        np.testing.assert_allclose(v.numpy(), t, rtol=1e-4, atol=1e-6)


def test_a_model_saved_compiled_can_continue_eagerly(tmp_path):
    # A checkpoint written on a GPU under train.compile: auto names compile_forward=True; resumed
    # on a CPU, the run switches it off (monetk.experiment.run_experiment).
    small_model(compile_forward=True).save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.compile_forward and loaded._terms_fn != loaded._terms
    loaded.use_compiled_forward(False)
    assert not loaded.get_config()["compile_forward"] and loaded._terms_fn == loaded._terms
    terms = loaded.evaluation_terms(random_images())
    assert np.isfinite(float(terms["loss"]))
