"""monetk: MONet (Burgess et al. 2019) in Keras 3 on the PyTorch backend, with every loss of the
ablation study of Komatsu, Ohmura and Kuniyoshi, "Ablation Study to Clarify the Mechanism of
Object Segmentation in Multi-Object Representation Learning" (``docs/references.md``)."""

from monetk.backend import ensure_torch_backend

ensure_torch_backend()

__version__ = "0.5.0"

#: Version of monetk's numerics: bumped whenever a change alters what a run with the same config
#: computes (a loss, the initialisation, the optimiser). It is part of every run id, so runs of
#: different numerics never share a store entry. 2: monetk 0.2; 3: Eq. 2 per element, Eq. 10 over
#: I = H*W*C elements (monetk 0.3).
NUMERICS_VERSION = 3
