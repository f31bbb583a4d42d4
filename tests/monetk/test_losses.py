"""Tests for monetk.losses against scipy, numpy loops, torch.distributions and closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, rel_entr
from scipy.stats import entropy, norm

from monetk import config, losses

SIGMAS = [0.09, 0.11, 0.11]


def _inputs(b=2, k=3, c=3, h=4, w=5, seed=0, dtype=torch.float64):
    """Random x [B,C,H,W], x_k near x, log_m (log-softmax over K), mask logits, mu, log_sigma."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    x = torch.rand(b, c, h, w, generator=gen, dtype=dtype) * 2 - 1
    x_k = x.unsqueeze(1) + 0.15 * randn(b, k, c, h, w)
    log_m = torch.log_softmax(2 * randn(b, k, 1, h, w), dim=1)
    return {
        "x": x,
        "x_k": x_k,
        "log_m": log_m,
        "mask_logits": 2 * randn(b, k, 1, h, w),
        "mu": randn(b, k, 6),
        "log_sigma": 0.5 * randn(b, k, 6),
    }


def _np(t):
    return t.detach().numpy()


def _hard_log_masks(owner, k):
    """log one-hot masks [B, K, 1, H, W] from an owner map [B, H, W]: 0 where owned, else -inf."""
    one_hot = torch.nn.functional.one_hot(owner, k).permute(0, 3, 1, 2).unsqueeze(2)
    return torch.log(one_hot.double())


# --- Eq. 2: the mixture NLL, per pixel and per element ------------------------------------------


def _scipy_nll(x, x_k, log_m, sigmas, per_pixel):
    x, x_k, log_m = _np(x), _np(x_k), _np(log_m)
    sigma = np.asarray(sigmas)[None, :, None, None, None]
    log_p = norm.logpdf(x[:, None], loc=x_k, scale=sigma)  # [B, K, C, H, W]
    if per_pixel:
        log_p = log_p.sum(axis=2, keepdims=True)
    log_mix = logsumexp(log_m + log_p, axis=1)
    return -log_mix.sum(axis=(1, 2, 3)).mean()


def test_nll_matches_scipy_per_element_mixture_with_unequal_sigmas():
    t = _inputs()
    value = losses.nll(t["x"], t["x_k"], t["log_m"], SIGMAS)
    expected = _scipy_nll(t["x"], t["x_k"], t["log_m"], SIGMAS, per_pixel=False)
    assert value.dtype == torch.float64 and value.shape == ()
    np.testing.assert_allclose(value.item(), expected, rtol=1e-12)


def test_nll_accepts_sigmas_as_tensor():
    t = _inputs(seed=1)
    as_list = losses.nll(t["x"], t["x_k"], t["log_m"], SIGMAS)
    as_tensor = losses.nll(t["x"], t["x_k"], t["log_m"], torch.tensor(SIGMAS))
    np.testing.assert_allclose(as_tensor.item(), as_list.item(), rtol=1e-7)


def test_nll_per_pixel_matches_scipy_per_pixel_mixture():
    t = _inputs(seed=2)
    value = losses.nll_per_pixel(t["x"], t["x_k"], t["log_m"], SIGMAS)
    expected = _scipy_nll(t["x"], t["x_k"], t["log_m"], SIGMAS, per_pixel=True)
    np.testing.assert_allclose(value.item(), expected, rtol=1e-12)


def test_nll_and_nll_per_pixel_differ_for_rgb_and_agree_for_one_channel():
    rgb = _inputs(c=3, seed=3)
    args = (rgb["x"], rgb["x_k"], rgb["log_m"], SIGMAS)
    assert abs(losses.nll(*args).item() - losses.nll_per_pixel(*args).item()) > 1.0
    gray = _inputs(c=1, seed=3)
    args = (gray["x"], gray["x_k"], gray["log_m"], SIGMAS)
    np.testing.assert_allclose(
        losses.nll(*args).item(), losses.nll_per_pixel(*args).item(), rtol=1e-12
    )


def test_nll_with_hard_masks_is_minimal_at_the_covered_pixels_closed_form():
    """Section 2: with one-hot masks the NLL is minimal when each component copies its pixels."""
    b, k, c, h, w = 1, 3, 3, 4, 4
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(b, c, h, w, generator=gen, dtype=torch.float64)
    owner = torch.randint(0, k, (b, h, w), generator=gen)
    owner[0, 0, :k] = torch.arange(k)  # every component owns at least one pixel
    log_m = _hard_log_masks(owner, k)
    x_k = x.unsqueeze(1).repeat(1, k, 1, 1, 1)
    # Pixels a component does not cover hold arbitrary values: they must not matter.
    uncovered = log_m.exp().expand_as(x_k) == 0
    x_k = torch.where(uncovered, torch.rand(x_k.shape, generator=gen, dtype=torch.float64), x_k)
    minimum = losses.nll(x, x_k, log_m, SIGMAS).item()

    sigma_of_pixel = np.asarray(SIGMAS)[owner.numpy()]
    closed_form = (c * (np.log(sigma_of_pixel) + 0.5 * np.log(2 * np.pi))).sum()
    np.testing.assert_allclose(minimum, closed_form, rtol=1e-12)

    for slot in range(k):
        for i, j in [(0, slot), (h - 1, w - 1), (2, 1)]:
            for channel in range(c):
                moved = x_k.clone()
                moved[0, slot, channel, i, j] += 0.05
                changed = losses.nll(x, moved, log_m, SIGMAS).item()
                if owner[0, i, j] == slot:
                    assert changed > minimum + 1e-6
                else:
                    assert changed == minimum


# --- Eqs. 3, 7, 8, 9 ------------------------------------------------------------------------------


def test_integrated_reconstruction_matches_numpy_loop():
    t = _inputs(b=2, k=3, c=2, h=3, w=2, seed=6)
    x_k, m = _np(t["x_k"]), _np(t["log_m"].exp())
    expected = np.zeros(x_k.shape[:1] + x_k.shape[2:])
    for k in range(x_k.shape[1]):
        expected += m[:, k] * x_k[:, k]
    value = losses.integrated_reconstruction(t["x_k"], t["log_m"])
    assert value.shape == t["x"].shape
    np.testing.assert_allclose(_np(value), expected, rtol=1e-12)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_ir_matches_torch_normal_log_prob(as_tensor):
    t = _inputs(seed=7)
    x_tilde = losses.integrated_reconstruction(t["x_k"], t["log_m"])
    sigma = torch.tensor(0.09, dtype=torch.float64) if as_tensor else 0.09
    log_prob = torch.distributions.Normal(x_tilde, 0.09).log_prob(t["x"])
    expected = -log_prob.sum(dim=(1, 2, 3)).mean()
    np.testing.assert_allclose(
        losses.ir(t["x"], x_tilde, sigma).item(), expected.item(), rtol=1e-12
    )


def test_mse_matches_numpy():
    t = _inputs(seed=8)
    x_tilde = losses.integrated_reconstruction(t["x_k"], t["log_m"])
    expected = np.mean((_np(t["x"]) - _np(x_tilde)) ** 2)
    np.testing.assert_allclose(losses.mse(t["x"], x_tilde).item(), expected, rtol=1e-12)


def test_mw_matches_numpy_double_loop():
    t = _inputs(b=2, k=3, c=2, h=2, w=3, seed=9)
    x, x_k, m = _np(t["x"]), _np(t["x_k"]), _np(t["log_m"].exp())
    b, k, c, h, w = x_k.shape
    per_image = []
    for n in range(b):
        total = 0.0
        for ch, i, j in np.ndindex(c, h, w):
            for slot in range(k):
                total += m[n, slot, 0, i, j] * (x[n, ch, i, j] - x_k[n, slot, ch, i, j]) ** 2
        per_image.append(total / (h * w * c))
    value = losses.mw(t["x"], t["x_k"], t["log_m"])
    np.testing.assert_allclose(value.item(), np.mean(per_image), rtol=1e-12)


# --- Eq. 4, 5, 10: latent and mask losses ---------------------------------------------------------


def test_latent_kl_matches_torch_distributions():
    t = _inputs(seed=10)
    posterior = torch.distributions.Normal(t["mu"], t["log_sigma"].exp())
    prior = torch.distributions.Normal(torch.zeros_like(t["mu"]), torch.ones_like(t["mu"]))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(dim=(1, 2)).mean()
    value = losses.latent_kl(t["mu"], t["log_sigma"])
    np.testing.assert_allclose(value.item(), expected.item(), rtol=1e-12)


def test_latent_kl_is_zero_at_the_prior():
    zeros = torch.zeros(3, 4, 5)
    assert losses.latent_kl(zeros, zeros).item() == 0.0


def _scipy_mask_kl(m, m_tilde):
    """Sum over pixels of the relative entropy over K, via scipy.stats.entropy; batch mean."""
    per_pixel = entropy(m, m_tilde, axis=1)  # [B, 1, H, W]
    return per_pixel.sum(axis=(1, 2, 3)).mean()


def test_mask_kl_matches_scipy_relative_entropy():
    t = _inputs(seed=11)
    m_tilde = _np(torch.softmax(t["mask_logits"], dim=1))
    expected = _scipy_mask_kl(_np(t["log_m"].exp()), m_tilde)
    value = losses.mask_kl(t["log_m"], t["mask_logits"])
    np.testing.assert_allclose(value.item(), expected, rtol=1e-10)


def test_mask_kl_with_zero_mask_entries_is_finite_and_matches_rel_entr():
    t = _inputs(seed=12)
    owner = torch.randint(0, 3, (2, 4, 5), generator=torch.Generator().manual_seed(12))
    log_m = _hard_log_masks(owner, 3)
    log_m[0, :, 0, 0, 0] = torch.log(torch.tensor([0.0, 0.25, 0.75], dtype=torch.float64))
    assert torch.isinf(log_m).any()
    m, m_tilde = _np(log_m.exp()), _np(torch.softmax(t["mask_logits"], dim=1))
    expected = rel_entr(m, m_tilde).sum(axis=(1, 2, 3, 4)).mean()
    value = losses.mask_kl(log_m, t["mask_logits"])
    assert math.isfinite(value.item())
    np.testing.assert_allclose(value.item(), expected, rtol=1e-10)


def test_mask_kl_is_zero_when_decoded_masks_equal_attention():
    t = _inputs(seed=13)
    value = losses.mask_kl(t["log_m"], t["log_m"] + 3.0)  # softmax is shift invariant
    assert abs(value.item()) < 1e-12


def test_mask_mse_matches_numpy_over_the_masks_repeated_over_channels():
    t = _inputs(seed=14)
    m, m_tilde = _np(t["log_m"].exp()), _np(torch.softmax(t["mask_logits"], dim=1))
    # Eq. 10's I elements: the [H, W, 1] masks broadcast over C = 3 channels.
    m, m_tilde = np.repeat(m, 3, axis=2), np.repeat(m_tilde, 3, axis=2)
    num_elements = np.prod(m.shape[2:])
    expected = ((m - m_tilde) ** 2).sum(axis=(1, 2, 3, 4)).mean() / num_elements
    value = losses.mask_mse(t["log_m"], t["mask_logits"])
    np.testing.assert_allclose(value.item(), expected, rtol=1e-12)


# --- Dispatch by name -----------------------------------------------------------------------------


def test_registries_name_exactly_the_config_choices():
    assert tuple(losses.RECONSTRUCTION) == config.RECONSTRUCTION_LOSSES
    assert tuple(losses.LATENT) == config.LATENT_LOSSES
    assert tuple(losses.MASK) == config.MASK_LOSSES


def test_dispatch_returns_the_direct_functions_values():
    t = _inputs(seed=15)
    x_tilde = losses.integrated_reconstruction(t["x_k"], t["log_m"])
    recon_args = {
        "x": t["x"],
        "x_k": t["x_k"],
        "log_m": t["log_m"],
        "x_tilde": x_tilde,
        "sigmas": SIGMAS,
        "ir_sigma": 0.07,
    }
    direct = {
        "nll": losses.nll(t["x"], t["x_k"], t["log_m"], SIGMAS),
        "nll_per_pixel": losses.nll_per_pixel(t["x"], t["x_k"], t["log_m"], SIGMAS),
        "ir": losses.ir(t["x"], x_tilde, 0.07),
        "mse": losses.mse(t["x"], x_tilde),
        "mw": losses.mw(t["x"], t["x_k"], t["log_m"]),
    }
    assert set(direct) == set(losses.RECONSTRUCTION)
    for name, expected in direct.items():
        assert losses.reconstruction_loss(name, **recon_args).item() == expected.item()
    assert (
        losses.latent_loss("kl", mu=t["mu"], log_sigma=t["log_sigma"]).item()
        == losses.latent_kl(t["mu"], t["log_sigma"]).item()
    )
    mask_args = {"log_m": t["log_m"], "mask_logits": t["mask_logits"]}
    assert losses.mask_loss("kl", **mask_args).item() == losses.mask_kl(**mask_args).item()
    assert (
        losses.mask_loss("mse", **mask_args).item() == losses.mask_mse(**mask_args).item()
    )


def test_dispatch_rejects_unknown_names_listing_the_allowed_ones():
    t = _inputs(seed=16)
    with pytest.raises(ValueError, match="nll, nll_per_pixel, ir, mse, mw"):
        losses.reconstruction_loss(
            "l1",
            x=t["x"],
            x_k=t["x_k"],
            log_m=t["log_m"],
            x_tilde=t["x"],
            sigmas=SIGMAS,
            ir_sigma=0.09,
        )
    with pytest.raises(ValueError, match="'mmd'.*allowed: kl"):
        losses.latent_loss("mmd", mu=t["mu"], log_sigma=t["log_sigma"])
    with pytest.raises(ValueError, match="allowed: kl, mse"):
        losses.mask_loss("bce", log_m=t["log_m"], mask_logits=t["mask_logits"])


# --- Bad input, precision, gradients --------------------------------------------------------------


def test_bad_shapes_and_sigmas_are_rejected_naming_the_argument():
    t = _inputs(seed=17)
    with pytest.raises(ValueError, match=r"sigmas: .*\(3,\)"):
        losses.nll(t["x"], t["x_k"], t["log_m"], [0.09, 0.11])
    with pytest.raises(ValueError, match="sigmas: expected 3 numbers > 0"):
        losses.nll(t["x"], t["x_k"], t["log_m"], [0.09, -0.1, 0.11])
    with pytest.raises(ValueError, match="x_k: expected shape"):
        losses.mw(t["x"], t["x_k"][:, :, :2], t["log_m"])
    with pytest.raises(ValueError, match="log_m: expected shape"):
        losses.nll(t["x"], t["x_k"], t["log_m"][:, :2], SIGMAS)
    with pytest.raises(ValueError, match="mask_logits: expected shape"):
        losses.mask_kl(t["log_m"], t["mask_logits"][..., :2])
    with pytest.raises(ValueError, match="x_tilde: expected the shape of x"):
        losses.mse(t["x"], t["x"][:, :1])
    with pytest.raises(ValueError, match="sigma: expected a number > 0"):
        losses.ir(t["x"], t["x"], 0.0)
    with pytest.raises(ValueError, match="log_sigma: expected the shape of mu"):
        losses.latent_kl(t["mu"], t["log_sigma"][..., :2])


def test_bfloat16_inputs_are_computed_in_float32():
    t = _inputs(seed=18, dtype=torch.float32)
    half = {name: value.bfloat16() for name, value in t.items()}
    rounded = {name: value.float() for name, value in half.items()}
    value = losses.nll(half["x"], half["x_k"], half["log_m"], SIGMAS)
    assert value.dtype == torch.float32
    expected = _scipy_nll(rounded["x"], rounded["x_k"], rounded["log_m"], SIGMAS, per_pixel=False)
    np.testing.assert_allclose(value.item(), expected, rtol=1e-5)
    kl = losses.mask_kl(half["log_m"], half["mask_logits"])
    assert kl.dtype == torch.float32
    np.testing.assert_allclose(
        kl.item(), losses.mask_kl(rounded["log_m"], rounded["mask_logits"]).item(), rtol=1e-6
    )


@pytest.mark.parametrize("hard_masks", [False, True])
def test_gradients_are_finite_for_every_loss(hard_masks):
    t = _inputs(seed=19, dtype=torch.float32)
    if hard_masks:  # log_m = -inf where m_k = 0 (legal for every loss that takes log_m)
        owner = torch.randint(0, 3, (2, 4, 5), generator=torch.Generator().manual_seed(19))
        t["log_m"] = _hard_log_masks(owner, 3).float()
        assert torch.isinf(t["log_m"]).any()
    leaves = {name: value.clone().requires_grad_(True) for name, value in t.items()}
    x_tilde = losses.integrated_reconstruction(leaves["x_k"], leaves["log_m"])
    terms = [
        losses.reconstruction_loss(
            name,
            x=leaves["x"],
            x_k=leaves["x_k"],
            log_m=leaves["log_m"],
            x_tilde=x_tilde,
            sigmas=SIGMAS,
            ir_sigma=0.09,
        )
        for name in losses.RECONSTRUCTION
    ]
    terms.append(losses.latent_loss("kl", mu=leaves["mu"], log_sigma=leaves["log_sigma"]))
    terms += [
        losses.mask_loss(name, log_m=leaves["log_m"], mask_logits=leaves["mask_logits"])
        for name in losses.MASK
    ]
    for term in terms:
        assert torch.isfinite(term)
        grads = torch.autograd.grad(
            term, list(leaves.values()), retain_graph=True, allow_unused=True
        )
        for name, grad in zip(leaves, grads, strict=True):
            assert grad is None or torch.isfinite(grad).all(), name
    # The NLL gradient reaches the component images (not all zero).
    assert torch.autograd.grad(terms[0], leaves["x_k"], retain_graph=True)[0].abs().sum() > 0
