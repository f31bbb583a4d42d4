"""MONet (Burgess et al. 2019) as a ``keras.Model`` with a custom ``train_step`` on torch.

Forward pass (section 2 of the ablation paper):
- attention: a recurrent U-Net run K-1 times on ``concat(x, log s_{k-1})`` in log space,
  ``log m_k = log s_{k-1} + log_sigmoid(l)``, ``log s_k = log s_{k-1} + log_sigmoid(-l)``, and the
  last component takes the remaining scope, ``m_K = s_{K-1}``;
- component VAE, all K components in one batched pass (K folded into the batch axis): encoder on
  ``concat(x, log m_k)`` gives mu and log sigma; ``z = mu + eps * sigma`` (Eq. 1; eps = 0 when
  beta = 0, as the paper states, and at evaluation); the broadcast decoder gives the component
  means x~_k and mask logits, whose softmax over K are the reconstructed masks m~_k.

Loss (Eq. 6): ``L = L_recon + beta * L_latent + gamma * L_mask``, each term chosen by name
(``monetk.losses``). Images enter as ``[B, H, W, C]`` on the 0..255 scale (uint8 from the data
cache) and are standardised to ``value_range`` on the device.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras
import numpy as np
import torch
import torch.nn.functional as F

# optimizers: registers the optimizer and learning-rate schedule that a saved MONet's compile
# config names, so that keras.models.load_model(".../model.keras") needs only this module.
from monetk import NUMERICS_VERSION, losses, optimizers  # noqa: F401
from monetk.config import sigma_per_slot
from monetk.layers import AttentionUNet, BroadcastDecoder, ComponentEncoder, hwio_to_ohwi
from monetk.trackers import TermMeans
from monetk.variable_cache import PerVariableCache

TERM_NAMES = ("loss", "recon", "latent", "mask", "mse")


@keras.saving.register_keras_serializable(package="monetk")
class MONet(keras.Model):
    """MONet with the ablation study's configurable losses.

    Args mirror ``monetk.config.DEFAULTS["model"]`` and ``["loss"]`` plus ``image_size``,
    ``channels``, ``value_range``, ``noise_seed`` (seed of the posterior sampling noise) and
    ``compile_forward`` (wrap the forward and loss in ``torch.compile``) and ``mixed_precision``
    (bf16 autocast of the forward on CUDA). ``saved_conv_layout`` is for loading only (see
    ``monetk.layers``): a config without it comes from a file whose conv kernels are in Keras'
    ``[kh, kw, in, out]``. ``numerics`` is the :data:`monetk.NUMERICS_VERSION` a saved file was
    written under (absent before monetk 0.3: version 2): a file of version 2 with
    ``reconstruction="nll"`` trains on with the per-pixel mixture it was trained with
    (``"nll_per_pixel"``), and one with ``mask="mse"`` warns that Eq. 10 is now C times its value.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, num_slots: int = 5,
                 unet_base_width: int = 32, unet_blocks: int | None = None,
                 unet_mlp_hidden: Sequence[int] = (128, 128),
                 encoder_channels: Sequence[int] = (32, 32, 64, 64),
                 encoder_mlp_hidden: int = 256, latent_size: int = 16,
                 decoder_channels: int = 32, decoder_layers: int = 4,
                 reconstruction: str = "nll", latent: str = "kl", mask: str = "kl",
                 beta: float = 0.5, gamma: float = 0.25, sigmas: Sequence[float] = (0.09, 0.11),
                 ir_sigma: float = 0.09, value_range: Sequence[float] = (-1.0, 1.0),
                 noise_seed: int = 0, compile_forward: bool = False,
                 mixed_precision: bool = False, saved_conv_layout: str = "ohwi",
                 numerics: int = NUMERICS_VERSION, **kwargs):
        super().__init__(**kwargs)
        reconstruction = _current_reconstruction_name(reconstruction, mask, numerics)
        choices = (("reconstruction", reconstruction, losses.RECONSTRUCTION),
                   ("latent", latent, losses.LATENT), ("mask", mask, losses.MASK))
        for name, value, allowed in choices:
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not one of {', '.join(allowed)}")
        if num_slots < 2:
            raise ValueError(f"num_slots must be >= 2, got {num_slots}")
        self.image_size, self.channels, self.num_slots = image_size, channels, num_slots
        self.unet_base_width, self.unet_blocks = unet_base_width, unet_blocks
        self.unet_mlp_hidden = list(unet_mlp_hidden)
        self.encoder_channels, self.encoder_mlp_hidden = list(encoder_channels), encoder_mlp_hidden
        self.latent_size = latent_size
        self.decoder_channels, self.decoder_layers = decoder_channels, decoder_layers
        self.reconstruction, self.latent, self.mask = reconstruction, latent, mask
        self.beta, self.gamma = float(beta), float(gamma)
        self.sigmas, self.ir_sigma = [float(s) for s in sigmas], float(ir_sigma)
        self.value_range = [float(v) for v in value_range]
        self.noise_seed, self.compile_forward = int(noise_seed), bool(compile_forward)
        self.mixed_precision = bool(mixed_precision)
        self._loads_hwio_file = saved_conv_layout == "hwio"

        layout = {"saved_conv_layout": saved_conv_layout}
        self.attention = AttentionUNet(image_size, channels + 1, unet_base_width, unet_blocks,
                                       self.unet_mlp_hidden, name="attention", **layout)
        self.encoder = ComponentEncoder(image_size, channels + 1, self.encoder_channels,
                                        encoder_mlp_hidden, latent_size, name="encoder", **layout)
        self.decoder = BroadcastDecoder(image_size, latent_size, decoder_channels,
                                        decoder_layers, channels + 1, name="decoder", **layout)
        self.term_means = TermMeans(TERM_NAMES)
        self._slot_sigmas = sigma_per_slot(self.sigmas, num_slots)
        self._constants: dict = {}
        self._step: int | None = None  # host-side copy of optimizer.iterations (no device sync)
        self._tensors_of = PerVariableCache(lambda v: v.value)
        self.use_compiled_forward(self.compile_forward)
        self.built = True

    def use_compiled_forward(self, compiled: bool) -> None:
        """Run the forward and loss through ``torch.compile`` or eagerly from now on (a checkpoint
        written on a GPU with ``train.compile: auto`` can resume eagerly on a CPU)."""
        self.compile_forward = bool(compiled)
        self._terms_fn = torch.compile(self._terms) if self.compile_forward else self._terms

    # ----- forward -------------------------------------------------------------------------
    def standardize(self, images) -> torch.Tensor:
        """``[B, H, W, C]`` on the 0..255 scale (any array) -> float32 ``[B, C, H, W]`` in
        ``value_range`` (channels-last memory format: the permute is a view)."""
        return self._scale(keras.ops.convert_to_tensor(images))

    def _scale(self, images: torch.Tensor) -> torch.Tensor:
        low, high = self.value_range
        return images.permute(0, 3, 1, 2).float() * ((high - low) / 255.0) + low

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """Log attention masks ``[B, K, 1, H, W]`` from the recurrent U-Net (log space)."""
        log_scope = torch.zeros_like(x[:, :1])
        log_masks = []
        for _ in range(self.num_slots - 1):
            logits = self.attention.call(torch.cat([x, log_scope], dim=1))
            log_masks.append(log_scope + F.logsigmoid(logits))
            log_scope = log_scope + F.logsigmoid(-logits)
        log_masks.append(log_scope)
        return torch.stack(log_masks, dim=1)

    def forward_components(self, x: torch.Tensor,
                           noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Attention then the K component-VAE passes folded into one batch of B*K; ``noise``
        (eps of Eq. 1, ``[B*K, latent]``) samples z, None decodes the posterior means."""
        b, c, h, w = x.shape
        k = self.num_slots
        log_m = self.attend(x)
        x_rep = x[:, None].expand(b, k, c, h, w).reshape(b * k, c, h, w)
        enc_in = torch.cat([x_rep, log_m.reshape(b * k, 1, h, w)], dim=1)
        mu, log_sigma = self.encoder.call(enc_in.contiguous(memory_format=torch.channels_last))
        z = mu if noise is None else mu + noise * torch.exp(log_sigma)
        out = self.decoder.call(z).reshape(b, k, c + 1, h, w)
        return {"log_m": log_m, "x_k": out[:, :, :c], "mask_logits": out[:, :, c:],
                "mu": mu.reshape(b, k, -1), "log_sigma": log_sigma.reshape(b, k, -1)}

    def _noise(self, images: torch.Tensor) -> torch.Tensor | None:
        """eps ~ N(0, 1) of Eq. 1 for a training batch, a function of (noise_seed, step) only, so
        a resumed run draws the same noise as an uninterrupted one, with no host-device sync.
        None when beta = 0: the paper then uses z = mu. Drawn outside the (compiled) forward."""
        if self.beta <= 0:
            return None
        gen = torch.Generator(device=images.device)
        gen.manual_seed(self.noise_seed * 1_000_003 + (self._step or 0))
        shape = (images.shape[0] * self.num_slots, self.latent_size)
        return torch.randn(shape, generator=gen, device=images.device)

    def _sigma_tensor(self, device: torch.device) -> torch.Tensor:
        key = ("sigmas", device)
        if key not in self._constants:
            self._constants[key] = torch.tensor(self._slot_sigmas, device=device)
        return self._constants[key]

    def _terms(self, images: torch.Tensor, noise: torch.Tensor | None,
               sigmas: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss terms of Eq. 6 for a batch of images on the 0..255 scale (the function
        ``torch.compile`` wraps, standardisation included so that it fuses into the first
        kernels: every tensor it needs comes in as an argument)."""
        x = self._scale(images)
        out = self.forward_components(x, noise)
        f32 = {name: t.float() for name, t in out.items()}
        x_tilde = losses.integrated_reconstruction(f32["x_k"], f32["log_m"])
        recon = losses.reconstruction_loss(
            self.reconstruction, x=x, x_k=f32["x_k"], log_m=f32["log_m"], x_tilde=x_tilde,
            sigmas=sigmas, ir_sigma=self.ir_sigma)
        latent = losses.latent_loss(self.latent, mu=f32["mu"], log_sigma=f32["log_sigma"])
        mask = losses.mask_loss(self.mask, log_m=f32["log_m"], mask_logits=f32["mask_logits"])
        total = recon + self.beta * latent + self.gamma * mask
        return {"loss": total, "recon": recon, "latent": latent, "mask": mask,
                "mse": losses.mse(x, x_tilde)}

    def evaluation_terms(self, images) -> dict[str, torch.Tensor]:
        """The deterministic (z = mu) loss terms of Eq. 6 of uint8 images ``[B, H, W, C]``."""
        images = keras.ops.convert_to_tensor(images)
        return self._terms_fn(images, None, self._sigma_tensor(images.device))

    def call(self, images: torch.Tensor, training: bool = False) -> torch.Tensor:
        """Log attention masks ``[B, K, 1, H, W]`` of a batch of images."""
        return self.attend(self.standardize(images))

    # ----- training ------------------------------------------------------------------------
    @property
    def metrics(self) -> list:
        return [self.term_means]

    def train_step(self, data) -> dict:
        images = keras.ops.convert_to_tensor(data[0] if isinstance(data, (tuple, list)) else data)
        if self._step is None:
            self._step = int(self.optimizer.iterations.value)
        variables, tensors = self._trainable_tensors()
        for tensor in tensors:  # zero_grad(set_to_none=True) without the module walk
            tensor.grad = None
        with torch.autocast(images.device.type, dtype=torch.bfloat16,
                            enabled=self._use_autocast(images)):
            terms = self._terms_fn(images, self._noise(images),
                                   self._sigma_tensor(images.device))
        self.optimizer.scale_loss(terms["loss"]).backward()
        with torch.no_grad():
            self.optimizer.apply([tensor.grad for tensor in tensors], variables)
        self._step += 1
        return self._update_trackers(terms)

    def test_step(self, data) -> dict:
        images = data[0] if isinstance(data, (tuple, list)) else data
        return self._update_trackers(self.evaluation_terms(images))

    def _update_trackers(self, terms: dict) -> dict:
        self.term_means.update_state(terms)
        return self.term_means.result()

    def _trainable_tensors(self) -> tuple[list, list[torch.Tensor]]:
        """The trainable Keras variables and their torch tensors (cached, see
        :mod:`monetk.variable_cache`)."""
        variables = self.trainable_weights
        (tensors,) = self._tensors_of(variables)
        return variables, tensors

    def _use_autocast(self, x: torch.Tensor) -> bool:
        """bf16 autocast of the forward on CUDA when ``mixed_precision`` (losses stay float32)."""
        return self.mixed_precision and x.device.type == "cuda"

    def reset_step_counter(self) -> None:
        """Forget the host-side step count (after weights or optimizer state were loaded)."""
        self._step = None

    # ----- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def decompose(self, images: np.ndarray, batch_size: int = 100) -> dict[str, np.ndarray]:
        """Deterministic decomposition (z = mu) of uint8 images ``[N, H, W, C]``: numpy arrays
        ``masks`` [N, K, H, W], ``components`` [N, K, H, W, C], ``reconstruction`` [N, H, W, C]
        (in ``value_range``) and per-image ``mse`` [N] of Eq. 7."""
        was_training = self.training
        self.eval()
        parts: dict[str, list] = {"masks": [], "components": [], "reconstruction": [], "mse": []}
        for start in range(0, len(images), batch_size):
            x = self.standardize(np.asarray(images[start:start + batch_size]))
            out = self.forward_components(x)
            masks = out["log_m"].exp()
            x_tilde = (masks * out["x_k"]).sum(dim=1)
            parts["masks"].append(masks[:, :, 0])
            parts["components"].append(out["x_k"].permute(0, 1, 3, 4, 2))
            parts["reconstruction"].append(x_tilde.permute(0, 2, 3, 1))
            parts["mse"].append(((x - x_tilde) ** 2).flatten(1).mean(dim=1))
        self.train(was_training)
        return {k: torch.cat(v).float().cpu().numpy() for k, v in parts.items()}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> MONet:
        """A saved file's config: one without ``saved_conv_layout`` predates monetk 0.2 (Keras'
        kernel layout), one without ``numerics`` predates monetk 0.3 (numerics version 2)."""
        return cls(**{"saved_conv_layout": "hwio", "numerics": 2, **config})

    def compile_from_config(self, config: dict) -> None:
        """Keras' (used when a saved model is loaded); for a file with Keras-layout conv
        kernels, the optimizer's slots of those kernels are re-laid as they load."""
        super().compile_from_config(config)
        if self._loads_hwio_file and getattr(self, "optimizer", None) is not None:
            _relay_conv_slots_on_next_load(self.optimizer)

    def get_config(self) -> dict:
        return {**super().get_config(), "saved_conv_layout": "ohwi", "numerics": NUMERICS_VERSION,
                "image_size": self.image_size, "channels": self.channels,
                "num_slots": self.num_slots, "unet_base_width": self.unet_base_width,
                "unet_blocks": self.unet_blocks, "unet_mlp_hidden": self.unet_mlp_hidden,
                "encoder_channels": self.encoder_channels,
                "encoder_mlp_hidden": self.encoder_mlp_hidden, "latent_size": self.latent_size,
                "decoder_channels": self.decoder_channels, "decoder_layers": self.decoder_layers,
                "reconstruction": self.reconstruction, "latent": self.latent, "mask": self.mask,
                "beta": self.beta, "gamma": self.gamma, "sigmas": self.sigmas,
                "ir_sigma": self.ir_sigma, "value_range": self.value_range,
                "noise_seed": self.noise_seed, "compile_forward": self.compile_forward,
                "mixed_precision": self.mixed_precision}


def _current_reconstruction_name(reconstruction: str, mask: str, numerics: int) -> str:
    """The loss name that computes today what ``reconstruction`` computed under ``numerics``."""
    if numerics >= NUMERICS_VERSION:
        return reconstruction
    if mask == "mse":
        warnings.warn("a model saved before monetk 0.3 with mask='mse': Eq. 10 is now (1/I) over "
                      "the I = H*W*C elements, C times the value it was trained with",
                      stacklevel=3)
    return "nll_per_pixel" if reconstruction == "nll" else reconstruction


def _relay_conv_slots_on_next_load(optimizer: keras.optimizers.Optimizer) -> None:
    """Make the next ``optimizer.load_own_variables`` re-lay 4-D arrays from Keras'
    ``[kh, kw, in, out]``: in MONet only conv kernels are 4-D, so a 4-D optimizer variable is a
    slot (velocity, momentum, ...) of one. Later loads are this version's layout, as saved."""
    load = optimizer.load_own_variables

    def load_relaid(store) -> None:
        keys = store.keys()  # Keras' H5IOStore has keys() and no __iter__
        arrays = {key: np.asarray(store[key]) for key in keys}
        load({key: hwio_to_ohwi(a) if a.ndim == 4 else a for key, a in arrays.items()})
        del optimizer.load_own_variables  # back to the class's method

    optimizer.load_own_variables = load_relaid

