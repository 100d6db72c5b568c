"""Which device a run uses: every measurement, trainer and study takes `pick_device` from here, below them all."""

import torch

from core.errors import LandscapeError


def pick_device(device: str = "auto") -> torch.device:
    """`auto`: the GPU when torch sees one, else the CPU; `cpu`, `cuda`, `cuda:N` as given.

    Raises:
        LandscapeError: CUDA was asked for on a machine without a GPU.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LandscapeError("CUDA was asked for but no GPU is available")
    return torch.device(device)
