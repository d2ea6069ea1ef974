"""Seeds and determinism: every generator's seed is derived from the whole ``--seed`` value."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed for one generator, from the full ``seed`` and the generator's role (and rank),
    so seeds that differ in any bit, even beyond 32 or 64 bits, give different streams."""
    digest = hashlib.blake2b(repr((int(seed), *keys)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) identically in every process: the model is
    initialised the same everywhere. Per-process streams come from :func:`derive_seed`."""
    random.seed(derive_seed(seed, "python"))
    np.random.seed(derive_seed(seed, "numpy") % 2**32)
    torch.manual_seed(derive_seed(seed, "torch"))


def configure_determinism(deterministic: bool, device: torch.device) -> None:
    """Deterministic kernels (warning, not failing, where an op has none), or cuDNN autotuning
    (``cudnn.benchmark``) for speed, as torchvision's reference recipe does on GPUs."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic


def resolve_deterministic(flag: bool | None, device: torch.device) -> bool:
    """On by default except on CUDA, where determinism costs speed."""
    return flag if flag is not None else device.type != "cuda"


NumpyState = tuple[str, np.ndarray, int, int, float]
"""The global NumPy generator's state in its legacy form (MT19937, which the global one always is)."""


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's global generators as plain data (tensors, lists, numbers)."""
    kind, keys, position, has_gauss, cached = cast(NumpyState, np.random.get_state(legacy=True))
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    """Restore what :func:`rng_state` captured (read back from a checkpoint)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
