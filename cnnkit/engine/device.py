"""Choosing the training device: CUDA, then Apple MPS, then CPU, unless ``--device`` says."""

from __future__ import annotations

import torch

from cnnkit.errors import UsageError


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"Unknown device '{name}'. Use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto.")
        if device.index is not None and device.index >= count:
            raise UsageError(f"--device {name}: this machine has {count} CUDA device(s), numbered 0 to {count - 1}.")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: Apple MPS is not available on this machine; use --device cpu or auto.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"Unsupported device '{name}'. Use auto, cpu, cuda, cuda:N or mps.")
    return device
