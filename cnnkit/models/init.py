"""Weight initialisers applied to every convolution and linear layer of a model.

Weights get the named scheme and biases start at zero (``--init-bias`` sets another value);
batch-norm layers start at weight 1, bias 0. ``default`` re-runs each layer's own PyTorch
initialisation.
"""

from __future__ import annotations

import math
from typing import Callable

from torch import nn

Scheme = Callable[[nn.Parameter], None]


def _lecun_normal(weight: nn.Parameter) -> None:
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(fan_in))


def _lecun_uniform(weight: nn.Parameter) -> None:
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    bound = math.sqrt(3.0 / fan_in)
    nn.init.uniform_(weight, -bound, bound)


SCHEMES: dict[str, Scheme] = {
    "lecun-normal": _lecun_normal,
    "lecun-uniform": _lecun_uniform,
    "xavier-normal": nn.init.xavier_normal_,
    "xavier-uniform": nn.init.xavier_uniform_,
    "he-normal": lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"),
    "he-uniform": lambda w: nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu"),
    "orthogonal": nn.init.orthogonal_,
}
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
NORMS = (nn.modules.batchnorm._BatchNorm,)  # every batch norm, SyncBatchNorm included


def initializer(scheme: str) -> Callable[[nn.Module], None]:
    """A function that re-initialises a model in place with ``scheme`` (or PyTorch's ``default``)."""

    def apply(model: nn.Module) -> None:
        for module in model.modules():
            if isinstance(module, LAYERS):
                if scheme == "default":
                    module.reset_parameters()
                else:
                    SCHEMES[scheme](module.weight)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
            elif isinstance(module, NORMS) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    return apply


def fill_biases(model: nn.Module, value: float) -> None:
    """Every convolution and linear bias set to ``value`` (0.01 in many tutorials)."""
    for module in model.modules():
        if isinstance(module, LAYERS) and module.bias is not None:
            nn.init.constant_(module.bias, value)
