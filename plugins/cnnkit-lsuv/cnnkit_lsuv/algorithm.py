"""Layer-sequential unit-variance initialisation: Algorithm 1 of Mishkin & Matas, "All you need is
a good init" (ICLR 2016).

1. Pre-initialise every convolution and linear weight with an orthonormal matrix (Saxe et al.
   2014; the weight reshaped to ``(out, in * kernel)``), biases at zero.
2. For each of those layers in the order the forward pass reaches them: take the variance of the
   layer's output on the batch, divide the weight by its square root; until the variance is
   within ``tolerance`` of 1 or after ``max_iterations`` rescalings (the paper's Tol_var = 0.1 and
   T_max = 10).

The passes run as training runs (batch norm normalises with the batch's statistics) but without
dropout, whose noise would be measured as variance; every module's mode and every buffer (batch
norm's running statistics) is restored afterwards, so only the weights and biases change.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

TOLERANCE = 0.1
MAX_ITERATIONS = 10
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
Layer = nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear


@dataclass(frozen=True)
class LayerResult:
    """One layer after LSUV: its output variance on the batch and how often it was rescaled."""

    name: str
    variance: float
    rescalings: int


def initialize(model: nn.Module, batch: torch.Tensor) -> None:
    """The initializer cnnkit calls as ``fn(model, batch)`` (registered with ``needs_batch=True``)."""
    lsuv(model, batch)


def lsuv(model: nn.Module, batch: torch.Tensor, *, tolerance: float = TOLERANCE,
         max_iterations: int = MAX_ITERATIONS) -> list[LayerResult]:
    """Initialise ``model`` in place from ``batch`` (what the model takes, on its device); one
    result per layer the forward pass reaches, in that order.

    One pass does it all: when the pass reaches a layer, every layer before it is final, so the
    layer's input is what a fresh pass would give it, and it does not depend on the layer's own
    weights; the layer is measured and rescaled on that input (as the paper's repeated passes
    would measure it), then the pass goes on with the rescaled layer.
    """
    names: dict[Layer, str] = {module: name for name, module in model.named_modules() if isinstance(module, LAYERS)}
    if not names:
        raise ValueError("LSUV found no convolution or linear layer to initialise.")
    results: list[LayerResult] = []
    reached: set[nn.Module] = set()

    def on_reaching(layer: Layer, args: tuple[torch.Tensor, ...]) -> None:
        if layer not in reached:  # a layer called twice in one pass is scaled at its first call
            reached.add(layer)
            results.append(unit_variance(names[layer], layer, args, tolerance, max_iterations))

    with torch.no_grad(), measuring(model):
        for layer in names:
            orthonormal_(layer.weight)
            if layer.bias is not None:
                layer.bias.zero_()
        handles = [layer.register_forward_pre_hook(on_reaching) for layer in names]
        try:
            model(batch)
        finally:
            for handle in handles:
                handle.remove()
    return results


def unit_variance(name: str, layer: Layer, args: tuple[torch.Tensor, ...], tolerance: float,
                  max_iterations: int) -> LayerResult:
    """Algorithm 1's inner loop for one layer on its input ``args``: divide the weight by the
    square root of the output variance until it is within ``tolerance`` of 1, at most
    ``max_iterations`` times."""

    def variance() -> float:
        return float(layer.forward(*args).float().var().item())  # forward(): no hooks, this one included

    measured, rescalings = variance(), 0
    while True:
        if not (math.isfinite(measured) and measured > 0):
            raise ValueError(f"LSUV cannot scale layer '{name}': its output variance on the batch is {measured:g}, "
                             "so no factor brings it to 1.")
        if abs(measured - 1.0) < tolerance or rescalings == max_iterations:
            return LayerResult(name, measured, rescalings)
        layer.weight.div_(math.sqrt(measured))
        measured, rescalings = variance(), rescalings + 1


def orthonormal_(weight: torch.Tensor) -> None:
    """``weight`` (any layout, dtype, device) set to an orthonormal matrix of its reshaped size,
    drawn on the CPU from torch's global generator, so a seed gives the same weights everywhere."""
    fresh = torch.empty(weight.shape, dtype=torch.float32)
    nn.init.orthogonal_(fresh)
    weight.copy_(fresh)


@contextlib.contextmanager
def measuring(model: nn.Module) -> Iterator[None]:
    """Training mode without dropout for the passes; afterwards every module's mode and every
    buffer as they were."""
    modes = {module: module.training for module in model.modules()}
    buffers = [(buffer, buffer.clone()) for buffer in model.buffers()]
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
