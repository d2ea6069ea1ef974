"""The version of the plugin contract, and each kind's ``Register`` protocol."""

from __future__ import annotations

from cnnkit.contracts._augmentations import AugmentationRegister
from cnnkit.contracts._callbacks import CallbackRegister
from cnnkit.contracts._commands import CommandRegister
from cnnkit.contracts._data import DatasetRegister
from cnnkit.contracts._initializers import InitializerRegister
from cnnkit.contracts._models import ModelRegister
from cnnkit.contracts._strategies import StrategyRegister

API_VERSION = "1.1"
"""The version of this contract. Minor versions add to it; a major version changes or removes."""

REGISTERS: dict[str, type] = {
    "models": ModelRegister,
    "datasets": DatasetRegister,
    "augmentations": AugmentationRegister,
    "initializers": InitializerRegister,
    "strategies": StrategyRegister,
    "commands": CommandRegister,
    "callbacks": CallbackRegister,
}
"""Each kind's ``Register`` protocol: its keyword parameters besides ``help`` are the metadata
that kind's entries may carry (any other key is refused)."""
