"""The plain-PyTorch twin of monetk's MONet: the reference for what Keras costs.

Idiomatic PyTorch (``nn.Module`` with ``nn.Conv2d``, ``nn.InstanceNorm2d``, ``nn.Linear``,
``F.interpolate``; NCHW tensors in the default memory format unless ``channels_last``), the same
widths as :class:`monetk.model.MONet` and the same loss with the study's defaults (Eq. 6 with the
per-element mixture NLL of Eq. 2, the latent KL of Eq. 4 and the mask KL of Eq. 5), written here
without monetk's code. :func:`load_monetk_weights` copies a monetk model's Keras variables into it
(conv kernels ``[kh, kw, in, out]`` -> ``[out, in, kh, kw]``, dense ``[in, out]`` -> ``[out, in]``),
so both compute the same function and their losses can be compared before they are timed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """U-Net block: bias-free 3x3 conv, instance norm with learned affine, ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.InstanceNorm2d(c_out, affine=True), nn.ReLU())


class UNet(nn.Module):
    """Attention U-Net: down widths c, c, 2c, 2c, ...; a 3-layer MLP bottleneck; 1x1 head."""

    def __init__(self, image_size: int, in_channels: int, base_width: int, num_blocks: int,
                 mlp_hidden: Sequence[int]):
        super().__init__()
        down = [base_width if i < 2 else 2 * base_width for i in range(num_blocks)]
        self.down = nn.ModuleList(_block(a, b) for a, b in pairwise([in_channels, *down]))
        side = image_size // 2 ** (num_blocks - 1)
        self.bottleneck_shape = (down[-1], side, side)
        flat = down[-1] * side * side
        sizes = [flat, *mlp_hidden, flat]
        self.mlp = nn.Sequential(*(m for a, b in pairwise(sizes)
                                   for m in (nn.Linear(a, b), nn.ReLU())))
        ups, c_in = [], down[-1]
        for level in reversed(range(num_blocks)):
            width = down[level - 1] if level > 0 else base_width
            ups.append(_block(c_in + down[level], width))
            c_in = width
        self.up = nn.ModuleList(ups)
        self.head = nn.Conv2d(c_in, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.interpolate(x, scale_factor=0.5, mode="nearest")
            x = block(x)
            skips.append(x)
        x = self.mlp(x.flatten(1)).view(-1, *self.bottleneck_shape)
        for j, block in enumerate(self.up):
            if j > 0:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(torch.cat([x, skips[-1 - j]], dim=1))
        return self.head(x)


class Encoder(nn.Module):
    """Component encoder: 3x3 stride-2 convs (padding 1) with ReLU, MLP to (mu, log sigma)."""

    def __init__(self, image_size: int, in_channels: int, channels: Sequence[int],
                 mlp_hidden: int, latent_size: int):
        super().__init__()
        layers, c_in, side = [], in_channels, image_size
        for width in channels:
            layers += [nn.Conv2d(c_in, width, 3, stride=2, padding=1), nn.ReLU()]
            c_in, side = width, (side - 1) // 2 + 1
        self.convs = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(c_in * side * side, mlp_hidden), nn.ReLU(),
                                 nn.Linear(mlp_hidden, 2 * latent_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.mlp(self.convs(x).flatten(1)).chunk(2, dim=1)
        return mu, log_sigma


class Decoder(nn.Module):
    """Spatial broadcast decoder: tile z over (H+2L)^2 with (x, y) coordinates in [-1, 1],
    L unpadded 3x3 convs with ReLU, a 1x1 conv to C colour means and one mask logit."""

    def __init__(self, image_size: int, latent_size: int, channels: int, num_layers: int,
                 out_channels: int):
        super().__init__()
        size = image_size + 2 * num_layers
        line = torch.linspace(-1.0, 1.0, size)
        self.register_buffer("coords", torch.stack([line.expand(size, size),
                                                    line[:, None].expand(size, size)])[None])
        widths = [latent_size + 2] + [channels] * num_layers
        self.convs = nn.Sequential(*(m for a, b in pairwise(widths)
                                     for m in (nn.Conv2d(a, b, 3), nn.ReLU())))
        self.head = nn.Conv2d(channels, out_channels, 1)
        self.channels_last = False

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n, d = z.shape
        size = self.coords.shape[-1]
        tiled = z[:, :, None, None].expand(n, d, size, size)
        x = torch.cat([tiled, self.coords.expand(n, -1, -1, -1)], dim=1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.convs(x))


class TorchMONet(nn.Module):
    """MONet in plain PyTorch with monetk's architecture and its default loss (nll, kl, kl).

    ``loss(x, sample)`` returns the terms of Eq. 6 for a float batch ``x`` ``[B, C, H, W]``
    already in ``value_range``; ``images_to_input`` turns uint8 ``[B, H, W, C]`` into that.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, num_slots: int = 5,
                 unet_base_width: int = 32, unet_blocks: int | None = None,
                 unet_mlp_hidden: Sequence[int] = (128, 128),
                 encoder_channels: Sequence[int] = (32, 32, 64, 64),
                 encoder_mlp_hidden: int = 256, latent_size: int = 16,
                 decoder_channels: int = 32, decoder_layers: int = 4, beta: float = 0.5,
                 gamma: float = 0.25, sigmas: Sequence[float] = (0.09, 0.11),
                 value_range: Sequence[float] = (-1.0, 1.0), channels_last: bool = False):
        super().__init__()
        blocks = unet_blocks or int(math.log2(image_size)) - 1
        self.num_slots, self.beta, self.gamma = num_slots, float(beta), float(gamma)
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.unet = UNet(image_size, channels + 1, unet_base_width, blocks, unet_mlp_hidden)
        self.encoder = Encoder(image_size, channels + 1, encoder_channels, encoder_mlp_hidden,
                               latent_size)
        self.decoder = Decoder(image_size, latent_size, decoder_channels, decoder_layers,
                               channels + 1)
        per_slot = [float(sigmas[min(k, len(sigmas) - 1)]) for k in range(num_slots)]
        self.register_buffer("sigmas", torch.tensor(per_slot))
        self.set_channels_last(channels_last)

    def set_channels_last(self, enabled: bool) -> None:
        """Keep weights and activations in the channels-last memory format (or NCHW)."""
        self.channels_last = self.decoder.channels_last = bool(enabled)
        self.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)

    def images_to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, H, W, C]`` (0..255) -> float ``[B, C, H, W]`` in ``value_range``."""
        low, high = self.value_range
        x = images.permute(0, 3, 1, 2).float() * ((high - low) / 255.0) + low
        return x if self.channels_last else x.contiguous()

    def forward(self, x: torch.Tensor, sample: bool = True) -> dict[str, torch.Tensor]:
        """Log masks, component means, mask logits, mu and log sigma of a batch."""
        b, c, h, w = x.shape
        k = self.num_slots
        log_scope = x.new_zeros(b, 1, h, w)
        log_masks = []
        for _ in range(k - 1):
            logits = self.unet(torch.cat([x, log_scope], dim=1))
            log_masks.append(log_scope + F.logsigmoid(logits))
            log_scope = log_scope + F.logsigmoid(-logits)
        log_masks.append(log_scope)
        log_m = torch.stack(log_masks, dim=1)
        enc_in = torch.cat([x.unsqueeze(1).expand(b, k, c, h, w), log_m], dim=2)
        mu, log_sigma = self.encoder(enc_in.reshape(b * k, c + 1, h, w))
        z = mu + torch.randn_like(mu) * log_sigma.exp() if sample and self.beta > 0 else mu
        out = self.decoder(z).view(b, k, c + 1, h, w)
        return {"log_m": log_m, "x_k": out[:, :, :c], "mask_logits": out[:, :, c:],
                "mu": mu.view(b, k, -1), "log_sigma": log_sigma.view(b, k, -1)}

    def loss(self, x: torch.Tensor, sample: bool = True,
             mixed_precision: bool = False) -> dict[str, torch.Tensor]:
        """Eq. 6 with sums over pixels (and latents) and means over the batch; the forward in
        bf16 autocast when ``mixed_precision`` on CUDA, the loss in float32."""
        with torch.autocast(x.device.type, torch.bfloat16,
                            enabled=mixed_precision and x.device.type == "cuda"):
            out = self.forward(x, sample)
        out = {name: t.float() for name, t in out.items()}
        log_m, x_k = out["log_m"], out["x_k"]
        sigmas = self.sigmas.view(1, -1, 1, 1, 1)
        normal = torch.distributions.Normal(x_k, sigmas, validate_args=False)
        log_p = normal.log_prob(x.unsqueeze(1))  # per element, as Eq. 2 is printed
        recon = -torch.logsumexp(log_m + log_p, dim=1).sum(dim=(1, 2, 3)).mean()
        # KL(N(mu, sigma) || N(0, 1)) in closed form: torch.distributions.kl_divergence looks its
        # implementation up in a global memo dict that torch.compile guards on, so when other
        # code (monet-pytorch) adds an entry the compiled twin recompiles in the middle of timing.
        mu, log_sigma = out["mu"], out["log_sigma"]
        latent = 0.5 * (mu**2 + torch.exp(2 * log_sigma)) - log_sigma - 0.5
        latent = latent.sum(dim=(1, 2)).mean()
        m = log_m.exp()
        log_m_tilde = F.log_softmax(out["mask_logits"], dim=1)
        mask = (m * (log_m - log_m_tilde)).sum(dim=(1, 2, 3, 4)).mean()
        total = recon + self.beta * latent + self.gamma * mask
        return {"loss": total, "recon": recon, "latent": latent, "mask": mask}


def _value(variable) -> torch.Tensor:
    """The torch tensor behind a Keras variable."""
    return variable.value.detach()


def _copy_conv(conv: nn.Conv2d, weights: tuple) -> None:
    kernel, bias = weights
    conv.weight.copy_(_value(kernel).permute(0, 3, 1, 2))
    if bias is not None:
        conv.bias.copy_(_value(bias))


def _copy_dense(linear: nn.Linear, weights: tuple) -> None:
    kernel, bias = weights
    linear.weight.copy_(_value(kernel).T)
    linear.bias.copy_(_value(bias))


def _copy_norm(norm: nn.InstanceNorm2d, weights: tuple) -> None:
    gamma, beta = weights
    norm.weight.copy_(_value(gamma))
    norm.bias.copy_(_value(beta))


@torch.no_grad()
def load_monetk_weights(twin: TorchMONet, model) -> None:
    """Copy the Keras variables of a :class:`monetk.model.MONet` of the same config into
    ``twin`` (kernels permuted to torch's layout); ValueError when the configs differ."""
    theirs = sum(p.numel() for p in twin.parameters())
    if theirs != model.count_params() or twin.num_slots != model.num_slots:
        raise ValueError(f"model: {model.count_params()} parameters and K={model.num_slots}, "
                         f"twin: {theirs} and K={twin.num_slots}; build the twin from the "
                         "model's config (twin_from_monetk)")
    att = model.attention
    for block, conv, norm in zip(twin.unet.down, att.down_convs, att.down_norms, strict=True):
        _copy_conv(block[0], conv)
        _copy_norm(block[1], norm)
    for block, conv, norm in zip(twin.unet.up, att.up_convs, att.up_norms, strict=True):
        _copy_conv(block[0], conv)
        _copy_norm(block[1], norm)
    linears = [m for m in twin.unet.mlp if isinstance(m, nn.Linear)]
    for linear, weights in zip(linears, att.mlp, strict=True):
        _copy_dense(linear, weights)
    _copy_conv(twin.unet.head, att.head)
    convs = [m for m in twin.encoder.convs if isinstance(m, nn.Conv2d)]
    for conv, weights in zip(convs, model.encoder.convs, strict=True):
        _copy_conv(conv, weights)
    _copy_dense(twin.encoder.mlp[0], model.encoder.hidden)
    _copy_dense(twin.encoder.mlp[2], model.encoder.out)
    convs = [m for m in twin.decoder.convs if isinstance(m, nn.Conv2d)]
    for conv, weights in zip(convs, model.decoder.convs, strict=True):
        _copy_conv(conv, weights)
    _copy_conv(twin.decoder.head, model.decoder.head)


def twin_from_monetk(model, channels_last: bool = False) -> TorchMONet:
    """A :class:`TorchMONet` with the config and the weights of a monetk MONet."""
    twin = TorchMONet(
        image_size=model.image_size, channels=model.channels, num_slots=model.num_slots,
        unet_base_width=model.unet_base_width, unet_blocks=model.unet_blocks,
        unet_mlp_hidden=model.unet_mlp_hidden, encoder_channels=model.encoder_channels,
        encoder_mlp_hidden=model.encoder_mlp_hidden, latent_size=model.latent_size,
        decoder_channels=model.decoder_channels, decoder_layers=model.decoder_layers,
        beta=model.beta, gamma=model.gamma, sigmas=model.sigmas,
        value_range=model.value_range)
    twin.to(_value(model.trainable_weights[0]).device)
    load_monetk_weights(twin, model)
    twin.set_channels_last(channels_last)
    return twin
