"""A frozen backbone's features, computed once: the "extract features, then train a classifier"
recipe. With only the head training, no augmentation and nothing thawing later, every epoch would
push the same images through the same frozen network; cnnkit does it once, under inference mode,
and trains the head on the stored features.

What is stored is the input of the first module that behaves differently in training (a dropout,
a drop path, a batch norm that is not frozen) on the way to the head, or the head's own input when
there is none: that module and the ones after it (the head last) run on the stored features in
training mode, as the full network would run them, drawing the same random numbers. A network
where that does not reproduce the full forward pass, checked on a probe, is not cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from cnnkit.engine.precision import Precision
from cnnkit.transfer import surgery

if TYPE_CHECKING:
    from cnnkit.data.splits import AnySplit

Call = tuple[str, nn.Module, tuple[Any, ...]]
"""A leaf module's call: its name, the module, and the arguments it was called with."""


class Reader(Protocol):
    """How :func:`extract` reads images (the run's trainer is one): batch size, device, loader
    workers, precision, and ``inputs`` turning uint8 images into the model's normalised input."""

    batch_size: int
    device: torch.device
    workers: int
    precision: Precision

    def inputs(self, images: torch.Tensor) -> torch.Tensor: ...


class ImageReader:
    """Reads images as the run's trainer does (:meth:`cnnkit.engine.trainer.Trainer.inputs`):
    ``(x - mean) / std`` on the 0..1 scale as one fused op, in the run's memory format, so the
    features are those the full network would compute in training."""

    def __init__(self, *, batch_size: int, device: torch.device, workers: int, precision: Precision,
                 mean: Sequence[float], std: Sequence[float], channels_last: bool):
        self.batch_size, self.device, self.workers, self.precision = batch_size, device, workers, precision
        mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.shift, self.scale_uint8 = -mean_t / std_t, 1.0 / std_t / 255
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, images.float(), self.scale_uint8).contiguous(memory_format=self.memory_format)


@dataclass
class FeatureSplit:
    """Features ``(N, D)`` (float) and labels, indexed like an in-memory split."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device) -> FeatureSplit:
        return FeatureSplit(self.images.to(device), self.labels.to(device))

    def batches(self, indices: Iterable[torch.Tensor | slice], device: torch.device, workers: int = 0, augment: object = None,
                seeds: object = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(features, labels)`` per batch of positions (``device``, ``workers``, ``augment`` and
        ``seeds`` are the image splits' parameters: features are on their device, not augmented)."""
        for index in indices:
            if isinstance(index, torch.Tensor):
                index = index.to(self.images.device)
            images = self.images[index]
            yield (images.clone() if isinstance(index, slice) else images), self.labels[index]  # never a view: dropout may work in place


class Tail(nn.Module):
    """The modules that run on cached features, in the order the network calls them."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


@contextmanager
def headless(model: nn.Module, head: str) -> Iterator[nn.Module]:
    """``model`` with its head swapped for the identity, so it returns the head's input."""
    layer = surgery.get_module(model, head)
    surgery.set_module(model, head, nn.Identity())
    try:
        yield model
    finally:
        surgery.set_module(model, head, layer)


@contextmanager
def stopping_before(model: nn.Module, name: str) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """``features(x)``: the input of ``model``'s module ``name`` (the rest of the network does not run)."""
    handle = surgery.get_module(model, name).register_forward_pre_hook(surgery.stop_before)

    def features(x: torch.Tensor) -> torch.Tensor:
        try:
            model(x)
        except surgery.Reached as reached:
            return reached.value
        raise RuntimeError(f"the network never ran '{name}'")

    try:
        yield features
    finally:
        handle.remove()


def extract(model: nn.Module, head: str, split: AnySplit, reader: Reader, limit: torch.Tensor | None = None,
            cut: str = "") -> FeatureSplit:
    """The features of ``split`` (or of its samples ``limit``), in order, read as ``reader`` reads
    images (normalisation, precision): the input of module ``cut``, or what the model gives
    without its head."""
    positions = limit if limit is not None else torch.arange(len(split))
    chunks = positions.split(reader.batch_size * 2)
    parts, labels = [], []
    model.eval()
    network: Callable[[torch.Tensor], torch.Tensor]
    with (stopping_before(model, cut) if cut else headless(model, head)) as network, torch.inference_mode():
        for images, batch_labels in split.batches(chunks, reader.device, reader.workers):
            with reader.precision.autocast():
                parts.append(network(reader.inputs(images)).float())
            labels.append(batch_labels)
    return FeatureSplit(torch.cat(parts).clone(), torch.cat(labels).clone())


def changes_in_training(module: nn.Module) -> bool:
    """Whether ``module`` (in its training-time mode) computes something else than in eval mode."""
    if not module.training:
        return False
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return True
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return module.track_running_stats
    rate = getattr(module, "drop_prob", getattr(module, "p", 0))  # timm's DropPath and DropBlock, torchvision's StochasticDepth
    return type(module).__name__ in ("DropPath", "DropBlock2d", "StochasticDepth") and bool(rate)


@dataclass
class Cut:
    """Where the cached features are taken: the input of module ``name``; ``tail`` runs on them."""

    name: str
    tail: Tail


def _calls(model: nn.Module, probe: torch.Tensor) -> tuple[list[Call], torch.Tensor]:
    """The leaf modules in the order ``model`` calls them (eval mode), with their inputs, and the output."""
    calls: list[Call] = []
    hooks = [module.register_forward_pre_hook(lambda m, args, name=name: calls.append((name, m, args)))
             for name, module in model.named_modules() if not any(True for _ in module.children())]
    model.eval()
    try:
        with torch.no_grad():
            output = model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    return calls, output


def _training_output(model: nn.Module, frozen: list[tuple[str, nn.Module]], run: Callable[[], torch.Tensor],
                     device: torch.device) -> torch.Tensor:
    """``run()`` with the model in its training-time modes, random draws from a fixed seed, and
    buffers (batch-norm statistics) and the run's random generators left as they were."""
    kept = {name: buffer.clone() for name, buffer in model.named_buffers()}
    devices = [device.index or 0] if device.type == "cuda" else []
    model.train()
    surgery.keep_frozen_in_eval(frozen)
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(0)
            return run()
    finally:
        for name, buffer in model.named_buffers():
            buffer.copy_(kept[name])
        model.eval()


def find_cut(model: nn.Module, head: str, frozen: list[tuple[str, nn.Module]], size: Sequence[int], device: torch.device) -> Cut | str:
    """Where features can be cached for ``model`` (see the module's notes), or why they cannot."""
    probe = torch.rand(2, *size, generator=torch.Generator().manual_seed(0)).to(device)
    calls, full = _calls(model, probe)
    if not calls or calls[-1][0] != head:
        return f"the head '{head}' is not the model's last operation"
    model.train()
    surgery.keep_frozen_in_eval(frozen)
    first = next((i for i, (_, module, _) in enumerate(calls) if changes_in_training(module)), len(calls) - 1)
    model.eval()
    name, _, args = calls[first]
    if len(args) != 1 or not isinstance(args[0], torch.Tensor) or args[0].ndim != 2:
        return f"the input of '{name}' is not a feature vector" if name != head else f"the head '{head}' does not take a feature vector"
    tail = Tail([module for _, module, _ in calls[first:]])
    try:
        with torch.no_grad():
            chained = torch.allclose(tail(args[0].clone()), full, atol=1e-5)
    except RuntimeError:
        chained = False
    if not chained:
        return f"the layers from '{name}' to the head are not a plain chain"
    trained = _training_output(model, frozen, lambda: model(probe), device)
    cached = _training_output(model, frozen, lambda: tail(args[0].clone()), device)
    if not torch.allclose(trained, cached, atol=1e-5):
        return f"the network computes something else in training before '{name}' (random or batch-dependent operations outside modules)"
    return Cut(name, tail)
