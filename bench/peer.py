"""Adapter for the outside reference, ``monet-pytorch`` 1.1.0 from PyPI (Michedev/MONet-pytorch).

Install: ``pip install --no-deps monet-pytorch==1.1.0 && pip install hydra-core path`` (the
package pins ``torch<=1.12`` but runs on torch 2.x; it imports ``hydra``, ``omegaconf`` and
``path``). :func:`build_peer` assembles its ``Monet`` from its own building blocks with the widths
of a monetk MONet; :data:`DIFFERENCES` lists what still differs. :func:`build_stock_peer` is the
package's own ``monet`` config for 64 px Multi-dSprites (K = 5).
"""

from __future__ import annotations

import importlib
import math

import torch
from torch import nn

#: What differs between monetk's MONet and the closest monet-pytorch build.
DIFFERENCES = (
    "U-Net head: 2 channels + log_softmax (monetk: 1 channel + logsigmoid; +c+1 parameters)",
    "4-block U-Net widths are (c, 2c, 2c, 2c) (monetk: c, c, 2c, 2c); 5 blocks agree",
    "U-Net MLP hidden sizes are both `mlp_size` (the first of monetk's unet_mlp_hidden)",
    "component VAE runs K times in a Python loop (monetk: K folded into the batch)",
    "losses through torch.distributions objects with argument validation on (host syncs), "
    "mask KL as Categorical KL of clamped (>=1e-5) probabilities, latent scale softplus "
    "(monetk: exp), colour means through a sigmoid, z always sampled, inputs in [0, 1]",
    "its per-step `zs` buffer is allocated on the CPU (a device copy per slot on CUDA)",
    "optimizer: torch RMSprop with monetk's settings (its unused config says centered=True)",
)


def peer_status() -> str | None:
    """``None`` when monet-pytorch imports, else why not (the exception, one line)."""
    try:
        importlib.import_module("monet_pytorch")
    except Exception as error:  # any import failure makes the peer unavailable
        return f"{type(error).__name__}: {error}"
    return None


class UnsupportedConfig(ValueError):
    """monet-pytorch cannot express this monetk config."""


def _require() -> None:
    status = peer_status()
    if status is not None:
        raise RuntimeError(f"monet-pytorch is not usable: {status}")


def build_peer(model) -> nn.Module:
    """monet-pytorch's ``Monet`` with the widths of the monetk MONet ``model`` (closest match).

    Raises UnsupportedConfig when its U-Net cannot express the config (it supports 4-6 blocks and a
    4 x 4 bottleneck only).
    """
    size = model.image_size
    blocks = model.unet_blocks or int(math.log2(size)) - 1
    if blocks not in (4, 5, 6) or size // 2 ** (blocks - 1) != 4:
        raise UnsupportedConfig(f"monet-pytorch's U-Net needs 4-6 blocks and a 4x4 bottleneck, got "
                                f"image_size={size}, unet_blocks={blocks}")
    _require()
    from monet_pytorch import Monet
    from monet_pytorch.template.encoder_decoder import BroadcastDecoderNet
    from monet_pytorch.template.sequential_cnn import make_sequential_cnn_from_config
    from monet_pytorch.unet import UNet

    unet = UNet(model.channels, blocks, model.unet_base_width, model.unet_mlp_hidden[0])
    side = size
    for _ in model.encoder_channels:
        side = (side - 1) // 2 + 1
    encoder = nn.Sequential(
        make_sequential_cnn_from_config(model.channels + 1, model.encoder_channels, 3,
                                        paddings=1, strides=2, activations="relu"),
        nn.Flatten(1),
        nn.Linear(model.encoder_channels[-1] * side * side, model.encoder_mlp_hidden),
        nn.ReLU(),
        nn.Linear(model.encoder_mlp_hidden, 2 * model.latent_size))
    layers = model.decoder_layers
    decoder = BroadcastDecoderNet(
        size + 2 * layers, size + 2 * layers,
        make_sequential_cnn_from_config(
            model.latent_size + 2, [model.decoder_channels] * layers + [model.channels + 1],
            [3] * layers + [1], activations=["relu"] * layers + [None]))
    sigmas = model.sigmas
    return Monet(size, size, model.latent_size, model.num_slots, model.beta, model.gamma,
                 encoder, decoder, unet, model.channels, bg_sigma=sigmas[0], fg_sigma=sigmas[-1])


def build_stock_peer() -> nn.Module:
    """monet-pytorch's own ``monet`` model config for ``multidsprites_colored_on_colored``
    (64 px, K = 5, encoder without padding and with batch norm, decoder 32-32-64-64)."""
    _require()
    from monet_pytorch import Monet

    return Monet.from_config("monet", "multidsprites_colored_on_colored")


def images_to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, H, W, C]`` -> float ``[B, C, H, W]`` in [0, 1], the peer's input."""
    return images.permute(0, 3, 1, 2).float().div(255.0).contiguous()


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters of a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
