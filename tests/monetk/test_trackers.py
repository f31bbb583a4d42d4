"""TermMeans: the per-term running means of fit's logs, against numpy."""

import numpy as np
import pytest
import torch

from monetk.trackers import TermMeans

NAMES = ("loss", "recon", "latent", "mask", "mse")


def test_means_over_steps_match_numpy_and_reset_to_zero():
    rng = np.random.default_rng(0)
    steps = rng.normal(size=(7, len(NAMES))) * 10
    means = TermMeans(NAMES)
    for row in steps:
        means.update_state({n: torch.tensor(v, dtype=torch.float32)
                            for n, v in zip(NAMES, row, strict=True)})
    result = means.result()
    assert list(result) == list(NAMES)
    np.testing.assert_allclose([float(result[n]) for n in NAMES], steps.mean(axis=0), rtol=1e-5)
    means.reset_state()
    assert [float(v) for v in means.result().values()] == [0.0] * len(NAMES)
    means.update_state({n: torch.tensor(float(i)) for i, n in enumerate(NAMES)})
    assert [float(v) for v in means.result().values()] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_extra_terms_are_ignored_and_missing_ones_are_an_error():
    means = TermMeans(("a", "b"))
    means.update_state({"a": torch.tensor(1.0), "b": torch.tensor(3.0), "c": torch.tensor(9.0)})
    assert {k: float(v) for k, v in means.result().items()} == {"a": 1.0, "b": 3.0}
    with pytest.raises(KeyError, match="b"):
        means.update_state({"a": torch.tensor(1.0)})


@pytest.mark.parametrize("names", [(), ("a", "a")])
def test_names_must_be_distinct_and_present(names):
    with pytest.raises(ValueError, match="distinct"):
        TermMeans(names)
