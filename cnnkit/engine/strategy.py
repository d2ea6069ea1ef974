"""Parallel strategies decide where the model lives and how it is wrapped for training.

A strategy has ``setup(model) -> model`` (move and wrap) and ``unwrap(model) -> model`` (the plain
module whose ``state_dict`` goes into checkpoints).
"""

from __future__ import annotations

import torch
from torch import nn


class SingleDevice:
    """Train on one device: the model moves there and is not wrapped."""

    def __init__(self, *, device: torch.device):
        self.device = device

    def setup(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model
