"""monetk's losses, model and stopping rule against the paper's equations as printed.

Every expected value here is computed from the paper (Komatsu, Ohmura and Kuniyoshi;
``docs/references.md``) directly: closed forms worked on paper for a 2x2 image with K = 2, and
plain-Python loops over the I = H*W*C elements written from the printed equations (``math`` only,
no monetk code and no torch reductions). They would catch a misreading of the paper, not only a
change of monetk's code: mixing Eq. 2 per pixel instead of per element, dividing Eq. 10's pixel
sum by I, a wrong sigma for a slot, a mask paired with another slot's component, the encoder fed
m_k instead of log m_k, an IR sigma that ignores its setting, ``>=`` for the rule's ``>``.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from monetk import losses
from monetk.callbacks import StoppingRule
from monetk.config import resolve
from monetk.experiment import build_model
from monetk.model import MONet

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# --- The printed equations, element by element --------------------------------------------


def eq2(x, x_k, m, sigma):
    """Eq. 2, third line summed as in the last line: -sum_i log (1/sqrt(2 pi)) sum_k
    exp(log(m_k / sigma_k) - (x - x~_k)^2 / (2 sigma_k^2)); i runs over B's images' H*W*C
    elements, the [H, W, 1] mask shared by the C channels; mean over the batch."""
    b, k, c, h, w = x_k.shape
    per_image = []
    for n in range(b):
        total = 0.0
        for ch, i, j in itertools.product(range(c), range(h), range(w)):
            inner = sum(
                math.exp(math.log(m[n, s, 0, i, j] / sigma[s])
                         - (x[n, ch, i, j] - x_k[n, s, ch, i, j]) ** 2 / (2 * sigma[s] ** 2))
                for s in range(k)
            )
            total -= math.log(inner / math.sqrt(2 * math.pi))
        per_image.append(total)
    return sum(per_image) / b


def eq3(x_k, m):
    """Eq. 3: x~ = sum_k m_k x~_k, element by element."""
    b, k, c, h, w = x_k.shape
    out = np.zeros((b, c, h, w))
    for n, s, ch, i, j in itertools.product(range(b), range(k), range(c), range(h), range(w)):
        out[n, ch, i, j] += m[n, s, 0, i, j] * x_k[n, s, ch, i, j]
    return out


def eq7(x, x_tilde):
    """Eq. 7: (1/I) sum_i (x - x~)^2, mean over the batch."""
    b = x.shape[0]
    return sum(((x[n] - x_tilde[n]) ** 2).sum() / x[n].size for n in range(b)) / b


def eq8(x, x_tilde, sigma):
    """Eq. 8: -log prod_i N(x_i; x~_i, sigma) = sum_i [log sigma + log sqrt(2 pi)
    + (x - x~)^2 / (2 sigma^2)], the normaliser once per element (the exact Gaussian NLL)."""
    b = x.shape[0]
    total = 0.0
    for value, mean in zip(x.ravel(), x_tilde.ravel(), strict=True):
        total += math.log(sigma) + LOG_SQRT_2PI + (value - mean) ** 2 / (2 * sigma**2)
    return total / b


def eq9(x, x_k, m):
    """Eq. 9: (1/I) sum_i sum_k m_k (x - x~_k)^2, mean over the batch."""
    b, k, c, h, w = x_k.shape
    total = 0.0
    for n, s, ch, i, j in itertools.product(range(b), range(k), range(c), range(h), range(w)):
        total += m[n, s, 0, i, j] * (x[n, ch, i, j] - x_k[n, s, ch, i, j]) ** 2
    return total / (c * h * w) / b


def eq10(m, m_tilde, channels):
    """Eq. 10: (1/I) sum_i sum_k (m_k - m~_k)^2 over the I = H*W*C elements (the masks shared by
    the C channels, as in Eq. 9), mean over the batch."""
    b, k, _, h, w = m.shape
    total = 0.0
    for n, s, _ch, i, j in itertools.product(range(b), range(k), range(channels), range(h),
                                             range(w)):
        total += (m[n, s, 0, i, j] - m_tilde[n, s, 0, i, j]) ** 2
    return total / (channels * h * w) / b


def eq4(mu, sigma):
    """Eq. 4 for a diagonal Gaussian posterior and N(0, I) prior: sum over k and d of
    log(1 / sigma) + (sigma^2 + mu^2) / 2 - 1/2, mean over the batch."""
    b = mu.shape[0]
    total = 0.0
    for value, scale in zip(mu.ravel(), sigma.ravel(), strict=True):
        total += -math.log(scale) + (scale**2 + value**2) / 2 - 0.5
    return total / b


def eq5(m, m_tilde):
    """Eq. 5: sum_k KL(m_k || m~_k) = sum over pixels and k of m_k log(m_k / m~_k), 0 log 0 = 0;
    mean over the batch."""
    b = m.shape[0]
    total = 0.0
    for p, q in zip(m.ravel(), m_tilde.ravel(), strict=True):
        total += p * math.log(p / q) if p > 0 else 0.0
    return total / b


def softmax_over_k(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- Closed forms on a 2x2 image, K = 2, C = 3 ----------------------------------------


def _two_slot_case(sigma):
    """x = 0 everywhere; slot 1 copies x in channel 0 and is off by sigma in channels 1 and 2,
    slot 2 the other way round; masks 1/2 each. Every element has one exact slot and one slot off
    by one standard deviation."""
    x = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    x_k = torch.zeros(1, 2, 3, 2, 2, dtype=torch.float64)
    x_k[0, 0, 1:] = sigma
    x_k[0, 1, 0] = sigma
    log_m = torch.full((1, 2, 1, 2, 2), math.log(0.5), dtype=torch.float64)
    return x, x_k, log_m


def test_eq2_is_mixed_per_element_hand_worked():
    # Per element: -log[(1/(sigma sqrt(2 pi))) (1/2 e^0 + 1/2 e^(-1/2))]; I = 2 * 2 * 3 = 12.
    sigma = 0.1
    x, x_k, log_m = _two_slot_case(sigma)
    per_element = math.log(sigma) + LOG_SQRT_2PI - math.log((1 + math.exp(-0.5)) / 2)
    value = losses.nll(x, x_k, log_m, [sigma, sigma]).item()
    assert value == pytest.approx(12 * per_element, rel=1e-12, abs=0)
    # Mixed per pixel instead, each slot is exact in 1 or 2 channels and off in the others:
    # -log[(sigma sqrt(2 pi))^-3 (1/2 e^(-1) + 1/2 e^(-1/2))] per pixel, 4 pixels.
    per_pixel = 3 * (math.log(sigma) + LOG_SQRT_2PI) - math.log((math.exp(-1) + math.exp(-0.5)) / 2)
    assert losses.nll_per_pixel(x, x_k, log_m, [sigma, sigma]).item() == pytest.approx(
        4 * per_pixel, rel=1e-12, abs=0)
    assert abs(12 * per_element - 4 * per_pixel) > 0.1  # the two readings are far apart


def test_eq2_gives_each_slot_its_own_sigma_hand_worked():
    # Slot 1 exact with sigma_1 = 0.11, mask 1/4; slot 2 off by 0.09 with sigma_2 = 0.09, mask 3/4:
    # per element -log[(1/sqrt(2 pi)) (0.25 / 0.11 + 0.75 / 0.09 e^(-1/2))], 12 elements.
    x = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    x_k = torch.zeros(1, 2, 3, 2, 2, dtype=torch.float64)
    x_k[0, 1] = 0.09
    log_m = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64)).view(1, 2, 1, 1, 1)
    log_m = log_m.expand(1, 2, 1, 2, 2)
    expected = 12 * -math.log((0.25 / 0.11 + 0.75 / 0.09 * math.exp(-0.5)) / math.sqrt(2 * math.pi))
    assert losses.nll(x, x_k, log_m, [0.11, 0.09]).item() == pytest.approx(expected, rel=1e-12)
    swapped = 12 * -math.log((0.25 / 0.09 + 0.75 / 0.11 * math.exp(-0.09**2 / (2 * 0.11**2)))
                             / math.sqrt(2 * math.pi))
    assert losses.nll(x, x_k, log_m, [0.09, 0.11]).item() == pytest.approx(swapped, rel=1e-12)
    assert abs(expected - swapped) > 0.1


@pytest.mark.parametrize("channels", [1, 3])
def test_eq10_hand_worked_does_not_depend_on_c(channels):
    # m = (1/4, 3/4), m~ = softmax(0, 0) = (1/2, 1/2) at every pixel: every element contributes
    # (1/4)^2 + (1/4)^2 = 1/8, and (1/I) times I elements of 1/8 is 1/8 for C = 1 and C = 3.
    log_m = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64)).view(1, 2, 1, 1, 1)
    log_m = log_m.expand(1, 2, 1, 2, 2).contiguous()
    logits = torch.zeros(1, 2, 1, 2, 2, dtype=torch.float64)
    assert losses.mask_mse(log_m, logits).item() == pytest.approx(0.125, rel=1e-12)
    m, m_tilde = log_m.exp().numpy(), np.full((1, 2, 1, 2, 2), 0.5)
    assert eq10(m, m_tilde, channels) == pytest.approx(0.125, rel=1e-12)


def test_eq9_and_eq7_hand_worked():
    # Slot 1 exact (mask 1/4), slot 2 off by 0.2 (mask 3/4) in every element:
    # Eq. 9 = 3/4 * 0.04 = 0.03; x~ = 3/4 * 0.2 = 0.15, Eq. 7 = 0.15^2 = 0.0225.
    x = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    x_k = torch.zeros(1, 2, 3, 2, 2, dtype=torch.float64)
    x_k[0, 1] = 0.2
    log_m = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64)).view(1, 2, 1, 1, 1)
    log_m = log_m.expand(1, 2, 1, 2, 2)
    assert losses.mw(x, x_k, log_m).item() == pytest.approx(0.03, rel=1e-12)
    x_tilde = losses.integrated_reconstruction(x_k, log_m)
    assert x_tilde.numpy() == pytest.approx(np.full((1, 3, 2, 2), 0.15), rel=1e-12)
    assert losses.mse(x, x_tilde).item() == pytest.approx(0.0225, rel=1e-12)
    # Eq. 8 with sigma = 0.5: 12 [log 0.5 + log sqrt(2 pi) + 0.0225 / 0.5]
    expected = 12 * (math.log(0.5) + LOG_SQRT_2PI + 0.0225 / (2 * 0.25))
    assert losses.ir(x, x_tilde, 0.5).item() == pytest.approx(expected, rel=1e-12)


# --- Random float64 cases against the element loops, to 1e-12 ---------------------------


def _random_case(seed, b=2, k=4, c=3, h=3, w=2):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (b, c, h, w))
    x_k = x[:, None] + rng.normal(0, 0.15, (b, k, c, h, w))
    logits = rng.normal(0, 2, (b, k, 1, h, w))
    logits[0, 0, 0, 0, 0] = -25.0  # a mask near 0 ...
    logits[1, 0, 0, 1, 1] = 25.0  # ... and one near 1
    m = softmax_over_k(logits)
    mask_logits = rng.normal(0, 2, (b, k, 1, h, w))
    mu, sigma = rng.normal(0, 1, (b, k, 5)), np.exp(rng.normal(0, 0.5, (b, k, 5)))
    return x, x_k, m, mask_logits, mu, sigma


@pytest.mark.parametrize("seed,c", [(0, 3), (1, 3), (2, 1)])
def test_every_default_loss_equals_its_printed_equation_in_float64(seed, c):
    x, x_k, m, mask_logits, mu, sigma = _random_case(seed, c=c)
    t = {name: torch.as_tensor(a) for name, a in
         {"x": x, "x_k": x_k, "log_m": np.log(m), "mask_logits": mask_logits, "mu": mu,
          "log_sigma": np.log(sigma)}.items()}
    sigmas = [0.11, 0.09, 0.09, 0.09]
    x_tilde = eq3(x_k, m)
    got = {
        "nll": losses.nll(t["x"], t["x_k"], t["log_m"], sigmas),
        "x_tilde": losses.integrated_reconstruction(t["x_k"], t["log_m"]),
        "mse": losses.mse(t["x"], torch.as_tensor(x_tilde)),
        "ir": losses.ir(t["x"], torch.as_tensor(x_tilde), 0.09),
        "mw": losses.mw(t["x"], t["x_k"], t["log_m"]),
        "latent_kl": losses.latent_kl(t["mu"], t["log_sigma"]),
        "mask_kl": losses.mask_kl(t["log_m"], t["mask_logits"]),
        "mask_mse": losses.mask_mse(t["log_m"], t["mask_logits"]),
    }
    m_tilde = softmax_over_k(mask_logits)
    expected = {
        "nll": eq2(x, x_k, m, sigmas), "x_tilde": x_tilde, "mse": eq7(x, x_tilde),
        "ir": eq8(x, x_tilde, 0.09), "mw": eq9(x, x_k, m), "latent_kl": eq4(mu, sigma),
        "mask_kl": eq5(m, m_tilde), "mask_mse": eq10(m, m_tilde, c),
    }
    for name, value in got.items():
        assert value.dtype == torch.float64, name
        np.testing.assert_allclose(value.numpy(), expected[name], rtol=1e-12, atol=0,
                                   err_msg=name)


# --- The model: slots, sigmas, the IR sigma, the encoder's input --------------------------


def _model(**kw):
    args = dict(image_size=8, num_slots=3, unet_base_width=4, unet_blocks=2,
                unet_mlp_hidden=(8, 8), encoder_channels=(4, 4, 4, 4), encoder_mlp_hidden=8,
                latent_size=3, decoder_channels=4, decoder_layers=2, beta=0.0, gamma=0.0)
    return MONet(**{**args, **kw})


def _images(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)


def test_each_slot_is_decoded_from_the_encoding_of_its_own_log_mask():
    """Section 2: z_k ~ q(z_k | x, m_k) from concat(x, log m_k) (MONet's encoder input, in log
    space) and x~_k, m~_k decoded from z_k; recomputed here one slot at a time."""
    model = _model()
    with torch.no_grad():
        x = model.standardize(_images())
        out = model.forward_components(x)
        log_m = model.attend(x)
        for slot in range(model.num_slots):
            enc_in = torch.cat([x, log_m[:, slot]], dim=1)
            mu, _ = model.encoder.call(enc_in.contiguous(memory_format=torch.channels_last))
            decoded = model.decoder.call(mu)  # [B, C + 1, H, W]: component means, mask logit
            torch.testing.assert_close(out["x_k"][:, slot], decoded[:, :3], rtol=1e-5,
                                       atol=1e-6)
            torch.testing.assert_close(out["mask_logits"][:, slot], decoded[:, 3:], rtol=1e-5,
                                       atol=1e-6)
            torch.testing.assert_close(out["log_m"][:, slot], log_m[:, slot])
        # Fed m_k instead of log m_k, the encoder gives other posteriors.
        enc_in = torch.cat([x, log_m[:, 0].exp()], dim=1)
        mu_m, _ = model.encoder.call(enc_in.contiguous(memory_format=torch.channels_last))
        assert not torch.allclose(mu_m, out["mu"][:, 0], atol=1e-4)


@pytest.mark.parametrize("sigmas,per_slot", [([0.11, 0.09], [0.11, 0.09, 0.09]),
                                             ([0.09, 0.11], [0.09, 0.11, 0.11])])
def test_model_nll_uses_sigma_k_of_each_slot(sigmas, per_slot):
    """The paper: sigma_x,k = 0.11 for k = 1, 0.09 otherwise (a short list repeats its last)."""
    model = _model(sigmas=sigmas)
    images = _images(1)
    with torch.no_grad():
        terms = model.evaluation_terms(images)
        out = model.forward_components(model.standardize(images))
    x = model.standardize(images).double().numpy()
    x_k, m = out["x_k"].double().numpy(), out["log_m"].double().exp().numpy()
    np.testing.assert_allclose(float(terms["recon"]), eq2(x, x_k, m, per_slot), rtol=2e-6)
    reversed_order = eq2(x, x_k, m, per_slot[::-1])
    assert abs(float(terms["recon"]) - reversed_order) > 1e-3 * abs(reversed_order)


@pytest.mark.parametrize("ir_sigma", [0.09, 0.2])
def test_model_ir_uses_the_configured_sigma(ir_sigma):
    """Eq. 8 with sigma_x = loss.ir_sigma, from the run config through build_model."""
    config = resolve({
        "data": {"image_size": 8},
        "model": {"num_slots": 3, "unet_base_width": 4, "unet_blocks": 2,
                  "unet_mlp_hidden": [8, 8], "encoder_channels": [4, 4, 4, 4],
                  "encoder_mlp_hidden": 8, "latent_size": 3, "decoder_channels": 4,
                  "decoder_layers": 2},
        "loss": {"reconstruction": "ir", "beta": 0.0, "gamma": 0.0, "ir_sigma": ir_sigma},
        "train": {"compile": False},
    })
    model = build_model(config)
    images = _images(2)
    with torch.no_grad():
        terms = model.evaluation_terms(images)
        out = model.forward_components(model.standardize(images))
    x = model.standardize(images).double().numpy()
    x_tilde = eq3(out["x_k"].double().numpy(), out["log_m"].double().exp().numpy())
    np.testing.assert_allclose(float(terms["recon"]), eq8(x, x_tilde, ir_sigma), rtol=2e-6)
    np.testing.assert_allclose(float(terms["mse"]), eq7(x, x_tilde), rtol=2e-5)


# --- Section 3's stopping rule at its boundaries ------------------------------------------


def _rule_after(previous_mse, threshold, ratio):
    rule = StoppingRule(steps_per_epoch=1, threshold=threshold, ratio=ratio)
    rule.previous_mse = previous_mse
    return rule


def test_stopping_rule_needs_mse_strictly_below_l():
    # MSE_t / MSE_{t-1} = 0.375 / 0.5 = 0.75 exactly (binary fractions), ratio 0.5: the ratio holds.
    assert not _rule_after(0.5, threshold=0.375, ratio=0.5).fires(0.375)  # MSE_t = l
    assert _rule_after(0.5, threshold=np.nextafter(0.375, 1.0), ratio=0.5).fires(0.375)


def test_stopping_rule_needs_the_ratio_strictly_above_its_bound():
    # 0.375 / 0.5 = 0.75 exactly: at the bound the rule does not fire, just above it does.
    assert not _rule_after(0.5, threshold=1.0, ratio=0.75).fires(0.375)
    assert _rule_after(0.5, threshold=1.0, ratio=np.nextafter(0.75, 0.0)).fires(0.375)
    assert not _rule_after(None, threshold=1.0, ratio=0.5).fires(0.375)  # no previous check
