"""monetk: MONet (Burgess et al. 2019) in Keras 3 on the PyTorch backend, with every loss of the
ablation study of Komatsu, Ohmura and Kuniyoshi (``shared/paper/ablation-monet.txt``)."""

from monetk.backend import ensure_torch_backend

ensure_torch_backend()

__version__ = "0.2.0"
