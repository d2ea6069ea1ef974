"""Numeric precision and memory layout: ``--precision``, ``--channels-last``, and what ``auto`` picks.

``auto`` picks bf16 where the hardware computes it natively (CUDA GPUs that support it; CPUs with
AVX512-BF16 or AMX), fp16 with a gradient scaler on older GPUs, and fp32 elsewhere. Mixed
precision runs the forward pass under ``torch.autocast``; weights and optimizer state stay fp32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere, so ``auto`` falls back to fp32)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    return any(flag in (cpu_flags() if flags is None else flags) for flag in CPU_BF16_FLAGS)


def resolve_precision(name: str, device: torch.device) -> str:
    """The concrete precision (fp32, bf16 or fp16) that ``name`` (checked by the plan) means on ``device``."""
    if name != "auto":
        if device.type == "mps" and name == "bf16":
            raise UsageError("--precision bf16 is not supported on Apple MPS; use fp16 or fp32.")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def resolve_channels_last(flag: bool | None, precision: str, device: torch.device) -> bool:
    """``--channels-last`` as given, or by default where it helps: with bf16/fp16 on CUDA and
    CPU, whose fast low-precision convolutions (tensor cores, oneDNN) want NHWC."""
    if flag is not None:
        return flag
    return precision != "fp32" and device.type in ("cuda", "cpu")


@dataclass(frozen=True)
class Precision:
    name: str
    device: torch.device

    @property
    def dtype(self) -> torch.dtype | None:
        return DTYPES.get(self.name)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled only for fp16 (bf16 has fp32's range and needs none)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")
