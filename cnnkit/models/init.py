"""Weight initialisers applied to every convolution and linear layer of a model.

Weights get the named scheme and biases start at zero (``--init-bias`` sets another value);
batch-norm layers start at weight 1, bias 0. ``default`` re-runs each layer's own PyTorch
initialisation.

An initializer registered with ``needs_batch=True`` (data-dependent, such as LSUV) is called
instead as ``fn(model, batch)`` once, on the model on its device, with :func:`first_batch`; a
resumed run loads its weights and calls none.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from cnnkit.data.splits import AnySplit
    from cnnkit.registry import Entry

Scheme = Callable[[torch.Tensor], object]
"""Re-initialises a weight in place (torch's ``nn.init`` functions also return it)."""


def _lecun_normal(weight: torch.Tensor) -> None:
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(fan_in))


def _lecun_uniform(weight: torch.Tensor) -> None:
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


def needs_batch(entry: Entry) -> bool:
    """Whether an initializer entry asked to be called as ``fn(model, batch)``."""
    return bool(entry.metadata.get("needs_batch", False))


def first_batch(split: AnySplit, *, batch_size: int, shuffle_seed: int, device: torch.device, mean: list[float],
                std: list[float], channels_last: bool, workers: int = 0) -> torch.Tensor:
    """The images of the first training batch of a one-process run, as the model gets them:
    the first ``min(batch_size, len(split))`` samples of the order the trainer shuffles with
    ``shuffle_seed``, as float32 on ``device``, normalised with the trainer's own arithmetic (so
    bit for bit the same) and in its memory layout. Augmentation is left out: the batch is the
    data, not one random draw of it. Every process of a distributed run gets this same batch."""
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(shuffle_seed))
    [(images, _)] = list(split.batches([order[:batch_size]], device, workers))
    mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
    shift, scale_uint8 = -mean_t / std_t, 1.0 / std_t / 255
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return torch.addcmul(shift, images.to(device).float(), scale_uint8).contiguous(memory_format=layout)


def initialize(entry: Entry, target: nn.Module, batch: torch.Tensor | None) -> Any:
    """Run initializer ``entry`` on ``target``: ``fn(target, batch)`` with ``target`` moved to the
    batch's device when it asked for a batch, else ``fn(target)``."""
    fn = entry.create()
    return fn(target) if batch is None else fn(target.to(batch.device), batch)


def check_fine_tuning(entry: Entry | None, backbone: str) -> None:
    """Fine-tuning initialises only the new head, over pretrained features; an initializer that
    measures the whole network on data (LSUV) has nothing it may touch there."""
    if entry is not None and backbone and needs_batch(entry):
        from cnnkit.errors import UsageError

        raise UsageError(
            f"--init {entry.name} initialises a network from a batch of training data, and fine-tuning keeps the "
            "pretrained layers (only the new head is initialised); drop --init, or use one that works layer by "
            "layer (see 'cnnkit initializers')."
        )
