"""The torch-ops layers against independent references: Keras' own Conv2D (same maths, Keras'
kernel layout), torch's memory-format checks, PyTorch's default initialisation bounds, and what
monetk 0.1 computed from a file it saved."""

import math
from pathlib import Path

import keras
import numpy as np
import pytest
import torch

from monetk.layers import AttentionUNet, BroadcastDecoder, ComponentEncoder, conv2d
from monetk.model import MONet
from monetk.optimizers import FusedRMSprop


@pytest.mark.parametrize("stride, padding, keras_padding", [(1, 1, "same"), (1, 0, "valid")])
def test_conv2d_matches_keras_conv2d(stride, padding, keras_padding):
    enc = ComponentEncoder(image_size=8, in_channels=3, channels=(5,), mlp_hidden=4,
                           latent_size=2)
    kernel, bias = enc.convs[0]
    rng = np.random.default_rng(0)
    bias.assign(rng.normal(size=5).astype("float32"))
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    reference = keras.layers.Conv2D(5, 3, strides=stride, padding=keras_padding)
    reference.build(x.shape)
    # monetk stores [out, kh, kw, in]; Keras' Conv2D wants [kh, kw, in, out].
    reference.set_weights([np.transpose(keras.ops.convert_to_numpy(kernel.value), (1, 2, 3, 0)),
                           keras.ops.convert_to_numpy(bias.value)])
    expected = keras.ops.convert_to_numpy(reference(x))
    ours = conv2d(torch.as_tensor(x).permute(0, 3, 1, 2), enc.convs[0], stride, padding)
    np.testing.assert_allclose(ours.permute(0, 2, 3, 1).detach().cpu().numpy(), expected,
                               rtol=1e-5, atol=1e-5)


def _conv_kernels(layer) -> list:
    groups = [getattr(layer, name) for name in ("down_convs", "up_convs", "convs")
              if hasattr(layer, name)]
    singles = [layer.head] if hasattr(layer, "head") else []
    return [kernel for kernel, _ in [*(w for g in groups for w in g), *singles]]


@pytest.mark.parametrize("layer", [AttentionUNet(16), ComponentEncoder(16), BroadcastDecoder(16)],
                         ids=["unet", "encoder", "decoder"])
def test_conv_kernels_are_channels_last_views_with_torch_default_init(layer):
    kernels = _conv_kernels(layer)
    assert kernels
    for kernel in kernels:
        w = kernel.value.permute(0, 3, 1, 2)  # what conv2d hands to F.conv2d
        # The convolutions run channels-last: a kernel in any other layout is copied per call.
        assert w.is_contiguous(memory_format=torch.channels_last), kernel.path
        fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(w)
        bound = 1.0 / math.sqrt(fan_in)  # nn.Conv2d's default (kaiming_uniform with a=sqrt(5))
        values = keras.ops.convert_to_numpy(kernel.value)
        assert np.abs(values).max() <= bound, kernel.path
        if values.size >= 200:  # the sample reaches near the bound: the bound is not smaller
            assert np.abs(values).max() > 0.9 * bound, kernel.path


def test_dense_kernels_use_torch_default_init():
    enc = ComponentEncoder(16)
    for kernel, _ in (enc.hidden, enc.out):
        fan_in = kernel.shape[0]  # Keras' [in, out]
        values = keras.ops.convert_to_numpy(kernel.value)
        assert 0.9 / math.sqrt(fan_in) < np.abs(values).max() <= 1.0 / math.sqrt(fan_in)


FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_model_saved_with_keras_kernel_layout_loads_and_trains_on_as_before():
    # Written by monetk 0.1 (11d425a), whose conv kernels were Keras' [kh, kw, in, out], after two
    # FusedRMSprop steps; the expected masks and reconstructions were computed by that version from
    # the saved state and after one more step, which needs the optimizer's velocities re-laid too.
    expected = np.load(FIXTURES / "monet_hwio_kernels_expected.npz")
    images = expected["images"]
    model = keras.models.load_model(FIXTURES / "monet_hwio_kernels.keras")
    assert isinstance(model, MONet) and isinstance(model.optimizer, FusedRMSprop)
    assert int(model.optimizer.iterations.value) == 2
    out = model.decompose(images)
    np.testing.assert_allclose(out["masks"], expected["masks"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["reconstruction"], expected["reconstruction"],
                               rtol=1e-5, atol=1e-6)
    model.fit(images, batch_size=2, epochs=1, verbose=0, shuffle=False)
    out = model.decompose(images)
    np.testing.assert_allclose(out["masks"], expected["masks_after_step"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["reconstruction"], expected["reconstruction_after_step"],
                               rtol=1e-4, atol=1e-5)
    # Saved again, it is in this version's layout and loads without re-laying.
    assert model.get_config()["saved_conv_layout"] == "ohwi"
    assert model.attention.saved_conv_layout == "ohwi"


def test_a_model_loaded_from_the_old_layout_does_not_re_lay_a_later_load(tmp_path):
    model = keras.models.load_model(FIXTURES / "monet_hwio_kernels.keras")
    model.save_weights(tmp_path / "new.weights.h5")
    before = [w.copy() for w in model.get_weights()]
    model.load_weights(tmp_path / "new.weights.h5")
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_unknown_saved_conv_layout_is_rejected_with_allowed_values():
    with pytest.raises(ValueError, match="saved_conv_layout='oihw' is not one of ohwi, hwio"):
        ComponentEncoder(16, saved_conv_layout="oihw")
