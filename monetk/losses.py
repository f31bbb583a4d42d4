"""The losses of the MONet ablation study (Komatsu, Ohmura and Kuniyoshi, Eqs. 2-10; see
``docs/references.md``).

Pure functions on torch tensors, vectorised and free of host syncs. Layout:
``x`` ``[B, C, H, W]``; ``x_k`` ``[B, K, C, H, W]``; ``log_m`` and ``mask_logits``
``[B, K, 1, H, W]``; ``mu`` and ``log_sigma`` ``[B, K, D]``. Every loss reduces each image as its
equation says and returns the mean over the batch, a scalar. Half-precision inputs (bf16, fp16)
are cast to float32; float64 stays float64. ``I = H * W * C`` is the paper's element count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Real

import torch
import torch.nn.functional as F
from torch import Tensor

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _full(t: Tensor) -> Tensor:
    """``t`` in float32, or unchanged when it is already float32 or float64."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _check_ndim(name: str, t: Tensor, ndim: int, layout: str) -> None:
    if t.ndim != ndim:
        raise ValueError(f"{name}: expected shape {layout}, got {tuple(t.shape)}")


def _check_components(x: Tensor, x_k: Tensor, log_m: Tensor) -> None:
    """Check ``x`` [B, C, H, W], ``x_k`` [B, K, C, H, W] and ``log_m`` [B, K, 1, H, W] agree."""
    _check_ndim("x", x, 4, "[B, C, H, W]")
    _check_ndim("x_k", x_k, 5, "[B, K, C, H, W]")
    b, c, h, w = x.shape
    if x_k.shape[0] != b or tuple(x_k.shape[2:]) != (c, h, w):
        raise ValueError(
            f"x_k: expected shape [B, K, C, H, W] = [{b}, K, {c}, {h}, {w}] to match x, "
            f"got {tuple(x_k.shape)}"
        )
    _check_masks("log_m", log_m, (b, x_k.shape[1], 1, h, w))


def _check_image_pair(x: Tensor, x_tilde: Tensor) -> None:
    _check_ndim("x", x, 4, "[B, C, H, W]")
    if x_tilde.shape != x.shape:
        raise ValueError(
            f"x_tilde: expected the shape of x {tuple(x.shape)}, got {tuple(x_tilde.shape)}"
        )


def _check_masks(name: str, t: Tensor, expected: tuple[int, ...]) -> None:
    if tuple(t.shape) != expected:
        raise ValueError(
            f"{name}: expected shape [B, K, 1, H, W] = {list(expected)}, got {tuple(t.shape)}"
        )


def _sigma_column(sigmas: Tensor | Sequence[float], num_slots: int, like: Tensor) -> Tensor:
    """``sigmas`` as a ``[1, K, 1, 1, 1]`` tensor of ``like``'s dtype and device."""
    if not isinstance(sigmas, Tensor):
        sigmas = list(sigmas)
        if not all(isinstance(s, Real) and s > 0 for s in sigmas):
            raise ValueError(f"sigmas: expected {num_slots} numbers > 0, got {sigmas!r}")
    sigmas = torch.as_tensor(sigmas, dtype=like.dtype, device=like.device)
    if tuple(sigmas.shape) != (num_slots,):
        raise ValueError(
            f"sigmas: expected one value per component, shape ({num_slots},), "
            f"got {tuple(sigmas.shape)}"
        )
    return sigmas.view(1, num_slots, 1, 1, 1)


def _component_log_likelihoods(
    x: Tensor, x_k: Tensor, log_m: Tensor, sigmas: Tensor | Sequence[float]
) -> Tensor:
    """log N(x_c; x~_kc, sigma_k) per component and element, ``[B, K, C, H, W]``."""
    x, x_k = _full(x), _full(x_k)
    _check_components(x, x_k, log_m)
    sigma = _sigma_column(sigmas, x_k.shape[1], x_k)
    z = (x.unsqueeze(1) - x_k) / sigma
    return -0.5 * z.square() - torch.log(sigma) - _HALF_LOG_2PI


def integrated_reconstruction(x_k: Tensor, log_m: Tensor) -> Tensor:
    """Eq. 3: the integrated reconstruction x~ = sum_k m_k x~_k, ``[B, C, H, W]``."""
    x_k = _full(x_k)
    _check_ndim("x_k", x_k, 5, "[B, K, C, H, W]")
    b, k, _, h, w = x_k.shape
    _check_masks("log_m", log_m, (b, k, 1, h, w))
    return (torch.exp(_full(log_m)) * x_k).sum(dim=1)


def nll(x: Tensor, x_k: Tensor, log_m: Tensor, sigmas: Tensor | Sequence[float]) -> Tensor:
    """Eq. 2 as printed, the default reconstruction loss "nll": the mixture inside each element.

    Per element i of the I = H*W*C: -log sum_k m_k N(x_i; x~_ki, sigma_k), with the mask m_k
    broadcast over the C channels and the full Gaussian normaliser (-log sigma_k - 0.5 log 2pi);
    logsumexp over k. Summed over the I elements (Eq. 2's last line), then the mean over the batch.

    This is also what the public PyTorch MONets compute (object-centric-library, monet-pytorch,
    GENESIS's MONet, baudm/MONet-pytorch: ``logsumexp`` over K of ``log m_k +
    Normal(x~_k, sigma_k).log_prob(x)`` with the channels kept apart), and the paper's authors
    "implemented the MONet model using PyTorch"; so the text and the likely code agree.
    :func:`nll_per_pixel` mixes per pixel instead. ``log_m`` may hold -inf (m_k = 0).
    """
    log_p = _component_log_likelihoods(x, x_k, log_m, sigmas)
    log_mix = torch.logsumexp(_full(log_m) + log_p, dim=1)
    return -log_mix.sum(dim=(1, 2, 3)).mean()


def nll_per_pixel(
    x: Tensor, x_k: Tensor, log_m: Tensor, sigmas: Tensor | Sequence[float]
) -> Tensor:
    """Eq. 2 mixed per pixel (reconstruction loss "nll_per_pixel"; not the paper's default).

    Per pixel: -log sum_k m_k prod_c N(x_c; x~_kc, sigma_k): the channels' log-likelihoods summed
    inside each component before the mixture, so a pixel belongs to one component as a whole.
    Summed over the H*W pixels, then the mean over the batch. Equal to :func:`nll` when C = 1.
    monetk 0.2 used this form as "nll"; it is kept for ablations of that choice.
    """
    log_p = _component_log_likelihoods(x, x_k, log_m, sigmas).sum(dim=2, keepdim=True)
    log_mix = torch.logsumexp(_full(log_m) + log_p, dim=1)
    return -log_mix.sum(dim=(1, 2, 3)).mean()


def ir(x: Tensor, x_tilde: Tensor, sigma: float | Tensor) -> Tensor:
    """Eq. 8, the IR loss: -log N(x; x~, sigma) summed over the I elements, mean over the batch.

    The normaliser log sigma + 0.5 log 2pi is counted once per element, which makes this the
    exact Gaussian NLL of the I independent elements; the printed equation writes it once per
    image. It is a constant either way and does not change the gradients.
    """
    x, x_tilde = _full(x), _full(x_tilde)
    _check_image_pair(x, x_tilde)
    if isinstance(sigma, Tensor):
        sigma = _full(sigma)
        log_sigma = torch.log(sigma)
    elif isinstance(sigma, Real) and not isinstance(sigma, bool) and sigma > 0:
        log_sigma = math.log(sigma)
    else:
        raise ValueError(f"sigma: expected a number > 0 or a tensor, got {sigma!r}")
    z = (x - x_tilde) / sigma
    per_element = 0.5 * z.square() + log_sigma + _HALF_LOG_2PI
    return per_element.sum(dim=(1, 2, 3)).mean()


def mse(x: Tensor, x_tilde: Tensor) -> Tensor:
    """Eq. 7: (1/I) sum_i (x - x~)^2 per image, mean over the batch."""
    x, x_tilde = _full(x), _full(x_tilde)
    _check_image_pair(x, x_tilde)
    return (x - x_tilde).square().mean(dim=(1, 2, 3)).mean()


def mw(x: Tensor, x_k: Tensor, log_m: Tensor) -> Tensor:
    """Eq. 9, the mask-weighted loss: (1/I) sum_i sum_k m_k (x - x~_k)^2 per image, batch mean.

    The mask m_k is broadcast over the C channels.
    """
    x, x_k = _full(x), _full(x_k)
    _check_components(x, x_k, log_m)
    weighted = torch.exp(_full(log_m)) * (x.unsqueeze(1) - x_k).square()
    return weighted.sum(dim=1).mean(dim=(1, 2, 3)).mean()


def latent_kl(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """Eq. 4: analytic KL(N(mu, sigma^2) || N(0, I)) summed over components and latent dims.

    Per dimension 0.5 (mu^2 + sigma^2 - 1) - log sigma; the sum over K and D per image, then the
    mean over the batch.
    """
    mu, log_sigma = _full(mu), _full(log_sigma)
    _check_ndim("mu", mu, 3, "[B, K, D]")
    if log_sigma.shape != mu.shape:
        raise ValueError(
            f"log_sigma: expected the shape of mu {tuple(mu.shape)}, got {tuple(log_sigma.shape)}"
        )
    kl = 0.5 * (mu.square() + torch.exp(2.0 * log_sigma) - 1.0) - log_sigma
    return kl.sum(dim=(1, 2)).mean()


def _mask_pair(log_m: Tensor, mask_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Float ``log_m`` and ``log m~`` = log_softmax of the logits over K, shapes checked."""
    log_m, mask_logits = _full(log_m), _full(mask_logits)
    _check_ndim("log_m", log_m, 5, "[B, K, 1, H, W]")
    b, k, _, h, w = log_m.shape
    _check_masks("log_m", log_m, (b, k, 1, h, w))
    _check_masks("mask_logits", mask_logits, (b, k, 1, h, w))
    return log_m, F.log_softmax(mask_logits, dim=1)


def mask_kl(log_m: Tensor, mask_logits: Tensor) -> Tensor:
    """Eq. 5: KL(m || m~) = sum_k m_k (log m_k - log m~_k) per pixel, summed over the H*W pixels.

    Mean over the batch. In log space with log m~ = log_softmax(mask_logits) over K; a component
    with m_k = 0 (log_m = -inf or underflowing) contributes 0 (0 log 0 = 0), with zero gradient.
    """
    log_m, log_m_tilde = _mask_pair(log_m, mask_logits)
    m = torch.exp(log_m)
    safe_log_m = torch.where(m > 0, log_m, torch.zeros_like(log_m))
    kl = (m * (safe_log_m - log_m_tilde)).sum(dim=1)
    return kl.sum(dim=(1, 2, 3)).mean()


def mask_mse(log_m: Tensor, mask_logits: Tensor) -> Tensor:
    """Eq. 10: (1/I) sum_i sum_k (m_k - m~_k)^2 per image, mean over the batch.

    The masks are [H, W, 1] and the sum runs over the I = H*W*C elements of the image, the mask
    broadcast over the C channels as in Eq. 9: each pixel counts C times and I = H*W*C, so this
    equals the mean over the H*W pixels of sum_k (m_k - m~_k)^2, whatever C is. (monetk 0.2 summed
    over the pixels only and divided by H*W*C, a third of Eq. 10 for RGB.)
    m~ = softmax(mask_logits) over K.
    """
    log_m, log_m_tilde = _mask_pair(log_m, mask_logits)
    squared = (torch.exp(log_m) - torch.exp(log_m_tilde)).square().sum(dim=1)
    return squared.mean(dim=(1, 2, 3)).mean()


#: Reconstruction losses by name (``monetk.config.RECONSTRUCTION_LOSSES``): the function and the
#: keyword arguments of :func:`reconstruction_loss` it takes, in order.
RECONSTRUCTION: dict[str, tuple[Callable[..., Tensor], tuple[str, ...]]] = {
    "nll": (nll, ("x", "x_k", "log_m", "sigmas")),
    "nll_per_pixel": (nll_per_pixel, ("x", "x_k", "log_m", "sigmas")),
    "ir": (ir, ("x", "x_tilde", "ir_sigma")),
    "mse": (mse, ("x", "x_tilde")),
    "mw": (mw, ("x", "x_k", "log_m")),
}
#: Latent losses by name (``monetk.config.LATENT_LOSSES``).
LATENT: dict[str, tuple[Callable[..., Tensor], tuple[str, ...]]] = {
    "kl": (latent_kl, ("mu", "log_sigma")),
}
#: Mask losses by name (``monetk.config.MASK_LOSSES``).
MASK: dict[str, tuple[Callable[..., Tensor], tuple[str, ...]]] = {
    "kl": (mask_kl, ("log_m", "mask_logits")),
    "mse": (mask_mse, ("log_m", "mask_logits")),
}


def _dispatch(
    kind: str,
    registry: dict[str, tuple[Callable[..., Tensor], tuple[str, ...]]],
    name: str,
    inputs: dict[str, object],
) -> Tensor:
    if name not in registry:
        raise ValueError(f"{kind} loss {name!r} is unknown; allowed: {', '.join(registry)}")
    function, argument_names = registry[name]
    return function(*(inputs[arg] for arg in argument_names))


def reconstruction_loss(
    name: str,
    *,
    x: Tensor,
    x_k: Tensor,
    log_m: Tensor,
    x_tilde: Tensor,
    sigmas: Tensor | Sequence[float],
    ir_sigma: float | Tensor,
) -> Tensor:
    """The reconstruction loss ``name`` (one of :data:`RECONSTRUCTION`) on the given tensors."""
    inputs = {
        "x": x,
        "x_k": x_k,
        "log_m": log_m,
        "x_tilde": x_tilde,
        "sigmas": sigmas,
        "ir_sigma": ir_sigma,
    }
    return _dispatch("reconstruction", RECONSTRUCTION, name, inputs)


def latent_loss(name: str, *, mu: Tensor, log_sigma: Tensor) -> Tensor:
    """The latent loss ``name`` (one of :data:`LATENT`)."""
    return _dispatch("latent", LATENT, name, {"mu": mu, "log_sigma": log_sigma})


def mask_loss(name: str, *, log_m: Tensor, mask_logits: Tensor) -> Tensor:
    """The mask loss ``name`` (one of :data:`MASK`)."""
    inputs = {"log_m": log_m, "mask_logits": mask_logits}
    return _dispatch("mask", MASK, name, inputs)
