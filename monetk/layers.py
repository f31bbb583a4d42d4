"""MONet's three networks as Keras layers whose weights are Keras variables and whose maths is
torch operations.

Why not stock Keras layers: the attention U-Net runs K-1 times per step and each stock layer call
costs ~0.1-0.3 ms of host overhead (measured; ``docs/monet_reference.md``, "Keras 3 on
PyTorch"): ~130 calls per forward made the step 1.5x slower than plain PyTorch at small batch.
Here each network is one Keras layer (weights tracked, saved and optimised by Keras) whose
``call`` is a handful of torch kernels on NCHW tensors in the channels-last memory format, and
the whole forward can be ``torch.compile``-d.

Convolution kernels are stored ``[out, kh, kw, in]``: permuted (a view) to torch's
``[out, in, kh, kw]`` they are in the channels-last memory format the convolutions run in, so no
layout copy of the weights or of their gradients is made (Keras' ``[kh, kw, in, out]`` cost a
copy of each kernel forward and of its gradient backward). Files saved by monetk 0.1, in Keras'
layout, still load: their configs lack ``saved_conv_layout`` and the loader re-lays their kernels
(``MONet`` does the same for the optimizer's slots). Dense kernels keep Keras' ``[in, out]``.
Initialisation follows PyTorch's defaults (uniform, bound 1/sqrt(fan_in)), as in the public
PyTorch MONet implementations; biases start at zero.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import torch
import torch.nn.functional as F

from monetk.backend import ensure_torch_backend

ensure_torch_backend()

CONV_LAYOUTS = ("ohwi", "hwio")


def hwio_to_ohwi(kernel) -> np.ndarray:
    """A conv kernel (or an optimizer slot of one) from Keras' ``[kh, kw, in, out]`` to
    ``[out, kh, kw, in]``."""
    return np.transpose(np.asarray(kernel), (3, 0, 1, 2))


def _kernel_init(fan_in: int) -> keras.initializers.Initializer:
    """PyTorch's default initialisation: uniform on +-1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


class _TorchOpsLayer(keras.layers.Layer):
    """A layer that creates its weights in ``__init__`` (all shapes are known from the config).

    ``saved_conv_layout`` is the convolution-kernel layout of the file the weights will be loaded
    from: ``"ohwi"`` (``[out, kh, kw, in]``, what this version saves) or ``"hwio"`` (Keras'
    ``[kh, kw, in, out]``, what files saved before it hold; their configs lack the key)."""

    def __init__(self, saved_conv_layout: str = "ohwi", **kwargs):
        super().__init__(**kwargs)
        if saved_conv_layout not in CONV_LAYOUTS:
            raise ValueError(f"saved_conv_layout={saved_conv_layout!r} is not one of "
                             f"{', '.join(CONV_LAYOUTS)}")
        self.saved_conv_layout = saved_conv_layout
        self._conv_kernels: list = []

    @classmethod
    def from_config(cls, config: dict) -> _TorchOpsLayer:
        return cls(**{"saved_conv_layout": "hwio", **config})

    def get_config(self) -> dict:
        return {**super().get_config(), "saved_conv_layout": "ohwi"}

    def load_own_variables(self, store) -> None:
        """Keras' loader, re-laying ``[kh, kw, in, out]`` conv kernels of older files."""
        if self.saved_conv_layout == "hwio":
            kernels = {id(kernel) for kernel in self._conv_kernels}
            variables = self._trainable_variables + self._non_trainable_variables
            store = {str(i): hwio_to_ohwi(store[str(i)]) if id(v) in kernels else store[str(i)]
                     for i, v in enumerate(variables)}
        super().load_own_variables(store)
        self.saved_conv_layout = "ohwi"  # the variables now hold this version's layout

    def _conv(self, name: str, size: int, c_in: int, c_out: int, bias: bool) -> tuple:
        kernel = self.add_weight(name=f"{name}_kernel", shape=(c_out, size, size, c_in),
                                 initializer=_kernel_init(size * size * c_in))
        self._conv_kernels.append(kernel)
        b = (self.add_weight(name=f"{name}_bias", shape=(c_out,), initializer="zeros")
             if bias else None)
        return kernel, b

    def _dense(self, name: str, c_in: int, c_out: int) -> tuple:
        kernel = self.add_weight(name=f"{name}_kernel", shape=(c_in, c_out),
                                 initializer=_kernel_init(c_in))
        return kernel, self.add_weight(name=f"{name}_bias", shape=(c_out,), initializer="zeros")

    def _norm(self, name: str, channels: int) -> tuple:
        return (self.add_weight(name=f"{name}_gamma", shape=(channels,), initializer="ones"),
                self.add_weight(name=f"{name}_beta", shape=(channels,), initializer="zeros"))

    def build(self, input_shape: tuple) -> None:  # weights already exist
        self.built = True


def conv2d(x: torch.Tensor, weights: tuple, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """Convolution with a kernel stored ``[out, kh, kw, in]`` on an NCHW tensor."""
    kernel, bias = weights
    w = kernel.value.permute(0, 3, 1, 2)
    return F.conv2d(x, w, None if bias is None else bias.value, stride=stride, padding=padding)


def dense(x: torch.Tensor, weights: tuple) -> torch.Tensor:
    """``x @ W + b`` with a Keras-layout kernel ``[in, out]``."""
    kernel, bias = weights
    if x.dim() == 2:
        return torch.addmm(bias.value, x, kernel.value)
    return x @ kernel.value + bias.value


def instance_norm(x: torch.Tensor, weights: tuple, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm with learned affine (= ``GroupNormalization(groups=-1, epsilon=1e-5)``).

    ``group_norm`` on a channels-last CPU tensor is 4x faster than ``instance_norm`` but computes
    the variance in one pass (E[x^2] - E[x]^2), losing ~5e-4 when |mean| >> std; centring each
    channel first keeps it accurate to ~1e-6 at 2x the cost of the bare call. The CUDA kernel uses
    Welford's algorithm and needs no centring (two kernels fewer per norm on the GPU hot path).
    """
    gamma, beta = weights
    centred = x - x.mean(dim=(2, 3), keepdim=True) if x.device.type == "cpu" else x
    return F.group_norm(centred, x.shape[1], gamma.value, beta.value, eps)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour resize x2 (expand + reshape: its backward is a cheap sum), done on the
    NHWC view so the result is channels-last like the skip it is concatenated with (an NCHW
    result made the up path mix memory formats: 8x slower norm backward on the CPU)."""
    b, c, h, w = x.shape
    nhwc = x.permute(0, 2, 3, 1)
    up = nhwc[:, :, None, :, None, :].expand(b, h, 2, w, 2, c).reshape(b, 2 * h, 2 * w, c)
    return up.permute(0, 3, 1, 2)


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour resize x1/2 (PyTorch's nearest rule picks the even rows and columns)."""
    return x[:, :, ::2, ::2]


def unet_widths(base_width: int, num_blocks: int) -> tuple[list[int], list[int]]:
    """Down widths (c, c, 2c, 2c, 2c, ...) and up widths (the mirrored path, ending in c)."""
    down = [base_width if i < 2 else 2 * base_width for i in range(num_blocks)]
    up = [down[level - 1] if level > 0 else base_width for level in reversed(range(num_blocks))]
    return down, up


@keras.saving.register_keras_serializable(package="monetk")
class AttentionUNet(_TorchOpsLayer):
    """MONet's attention network alpha_psi(x, s): a U-Net of ``num_blocks`` down and up blocks.

    Block: bias-free 3x3 conv, instance norm (learned affine), ReLU, nearest resize (none after the
    last block of each path). Skips are taken after each down block's ReLU and concatenated to the
    input of the matching up block. Bottleneck: a 3-layer MLP (``mlp_hidden``, then back to the
    flattened bottleneck size, ReLU after all three). Head: a 1x1 conv to one logit channel.
    Input ``[B, C+1, H, W]`` (image and log scope), output logits ``[B, 1, H, W]``.
    """

    def __init__(self, image_size: int = 64, in_channels: int = 4, base_width: int = 32,
                 num_blocks: int | None = None, mlp_hidden: tuple = (128, 128), **kwargs):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.in_channels = in_channels
        self.base_width = base_width
        self.num_blocks = num_blocks or int(math.log2(image_size)) - 1
        self.mlp_hidden = list(mlp_hidden)
        bottleneck = image_size // 2 ** (self.num_blocks - 1)
        if bottleneck < 1 or image_size % 2 ** (self.num_blocks - 1):
            raise ValueError(
                f"unet_blocks={self.num_blocks} is too deep for image_size={image_size}")
        down, up = unet_widths(base_width, self.num_blocks)
        self.down_convs, self.down_norms, self.up_convs, self.up_norms = [], [], [], []
        c_in = in_channels
        for i, width in enumerate(down):
            self.down_convs.append(self._conv(f"down{i}", 3, c_in, width, bias=False))
            self.down_norms.append(self._norm(f"down{i}_norm", width))
            c_in = width
        flat = down[-1] * bottleneck * bottleneck
        sizes = [flat, *self.mlp_hidden, flat]
        self.mlp = [self._dense(f"mlp{i}", a, b)
                    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))]
        c_in = down[-1]
        for j, width in enumerate(up):
            skip = down[self.num_blocks - 1 - j]
            self.up_convs.append(self._conv(f"up{j}", 3, c_in + skip, width, bias=False))
            self.up_norms.append(self._norm(f"up{j}_norm", width))
            c_in = width
        self.head = self._conv("head", 1, c_in, 1, bias=True)
        self.built = True

    def call(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        last = self.num_blocks - 1
        for i in range(self.num_blocks):
            x = F.relu(instance_norm(conv2d(x, self.down_convs[i], padding=1), self.down_norms[i]))
            skips.append(x)
            if i < last:
                x = downsample2x(x)
        h = x.flatten(1)
        for layer in self.mlp:
            h = F.relu(dense(h, layer))
        x = h.view_as(x)
        for j in range(self.num_blocks):
            x = torch.cat([x, skips[last - j]], dim=1)
            x = F.relu(instance_norm(conv2d(x, self.up_convs[j], padding=1), self.up_norms[j]))
            if j < last:
                x = upsample2x(x)
        return conv2d(x, self.head)

    def get_config(self) -> dict:
        return {**super().get_config(), "image_size": self.image_size,
                "in_channels": self.in_channels, "base_width": self.base_width,
                "num_blocks": self.num_blocks, "mlp_hidden": self.mlp_hidden}


@keras.saving.register_keras_serializable(package="monetk")
class ComponentEncoder(_TorchOpsLayer):
    """Component VAE encoder q(z_k | x, m_k): 3x3 stride-2 convs with one pixel of padding on every
    side and ReLU, then an MLP (``mlp_hidden`` with ReLU, then 2 * latent). Input
    ``[N, C+1, H, W]`` (image and log m_k); output ``(mu, log_sigma)``, each
    ``[N, latent_size]``."""

    def __init__(self, image_size: int = 64, in_channels: int = 4,
                 channels: tuple = (32, 32, 64, 64), mlp_hidden: int = 256,
                 latent_size: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.in_channels = in_channels
        self.channels = list(channels)
        self.mlp_hidden = mlp_hidden
        self.latent_size = latent_size
        size, c_in, self.convs = image_size, in_channels, []
        for i, width in enumerate(self.channels):
            self.convs.append(self._conv(f"conv{i}", 3, c_in, width, bias=True))
            size, c_in = (size + 2 - 3) // 2 + 1, width
        self.hidden = self._dense("mlp0", c_in * size * size, mlp_hidden)
        self.out = self._dense("mlp1", mlp_hidden, 2 * latent_size)
        self.built = True

    def call(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in self.convs:
            x = F.relu(conv2d(x, conv, stride=2, padding=1))
        h = F.relu(dense(x.flatten(1), self.hidden))
        mu, log_sigma = dense(h, self.out).chunk(2, dim=1)
        return mu, log_sigma

    def get_config(self) -> dict:
        return {**super().get_config(), "image_size": self.image_size,
                "in_channels": self.in_channels, "channels": self.channels,
                "mlp_hidden": self.mlp_hidden, "latent_size": self.latent_size}


@keras.saving.register_keras_serializable(package="monetk")
class BroadcastDecoder(_TorchOpsLayer):
    """Spatial broadcast decoder p(x | z_k): tile z to (H + 2L) x (W + 2L), append two coordinate
    channels in [-1, 1], L unpadded 3x3 convs with ReLU, a 1x1 conv to C colour means and one mask
    logit. Input ``[N, latent]``; output ``[N, C+1, H, W]``. Colours have no output activation
    (the data are standardised to a symmetric range)."""

    def __init__(self, image_size: int = 64, latent_size: int = 16, channels: int = 32,
                 num_layers: int = 4, out_channels: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.latent_size = latent_size
        self.channels = channels
        self.num_layers = num_layers
        self.out_channels = out_channels
        c_in, self.convs = latent_size + 2, []
        for i in range(num_layers):
            self.convs.append(self._conv(f"conv{i}", 3, c_in, channels, bias=True))
            c_in = channels
        self.head = self._conv("head", 1, c_in, out_channels, bias=True)
        self.built = True

    def call(self, z: torch.Tensor) -> torch.Tensor:
        size = self.image_size + 2 * self.num_layers
        n = z.shape[0]
        line = torch.linspace(-1.0, 1.0, size, device=z.device, dtype=z.dtype)
        ys, xs = torch.meshgrid(line, line, indexing="ij")
        coords = torch.stack([xs, ys]).expand(n, 2, size, size)
        tiled = z[:, :, None, None].expand(n, self.latent_size, size, size)
        x = torch.cat([tiled, coords], dim=1).contiguous(memory_format=torch.channels_last)
        for conv in self.convs:
            x = F.relu(conv2d(x, conv))
        return conv2d(x, self.head)

    def get_config(self) -> dict:
        return {**super().get_config(), "image_size": self.image_size,
                "latent_size": self.latent_size, "channels": self.channels,
                "num_layers": self.num_layers, "out_channels": self.out_channels}
