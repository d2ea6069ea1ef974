"""The typed contracts between cnnkit and its plugins, in one public module.

A plugin author imports from here and nowhere else inside cnnkit. Each contract is a
``typing.Protocol`` (structural: implement the members, no base class needed) or a dataclass.
Importing this module never imports torch; the annotations name torch types as strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy
    import torch
    from torch import nn


@dataclass(frozen=True)
class StrategyOptions:
    """What ``cnnkit train`` hands a strategy factory: ``factory(options) -> Strategy``.

    ``device`` is the ``--device`` value (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``);
    ``nproc_per_node`` is ``0`` when the user did not choose (one process per GPU, else one).
    """

    device: str = "auto"
    sync_bn: bool = False
    nproc_per_node: int = 0
    nnodes: int = 1
    node_rank: int = -1
    rdzv_endpoint: str = ""
    rdzv_timeout: int = 300
    """Seconds to wait for every node to join the rendezvous (``--rdzv-timeout``)."""


@runtime_checkable
class Strategy(Protocol):
    """A parallel strategy owns the process: it is the first object a run builds.

    It decides the device, knows its rank among ``world_size`` processes, reduces tensors across
    them, picks which sample indices this process trains on, wraps the model for training and
    unwraps it for checkpoints, and says whether this process writes files (``is_main``).
    Strategies that need several processes set ``distributed = True``; cnnkit then starts the
    workers through ``launch`` (torch.distributed's elastic launcher) unless it runs inside them.
    """

    name: str
    distributed: bool

    @property
    def device(self) -> torch.device: ...

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...

    @property
    def is_main(self) -> bool:
        """True in the one process that writes the run directory, checkpoints and progress."""

    def setup(self) -> None:
        """Join the process group (distributed strategies); called once, before anything else."""

    def barrier(self) -> None: ...

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes, in place, and return it."""

    def all_gather_object(self, obj: object) -> list[object]:
        """``obj`` from every process, in rank order (small, picklable values only)."""

    def shard(self, count: int, global_batch: int, order: torch.Tensor | None = None) -> list[torch.Tensor]:
        """This process's sample indices for each step of one pass over ``count`` samples.

        Step ``k`` covers global positions ``[k * global_batch, (k + 1) * global_batch)`` of
        ``order`` (or of ``range(count)`` when ``order`` is None); this process gets its share.
        """

    def wrap(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device and wrap it for training (DataParallel, DDP, ...)."""

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The plain module inside ``wrap``'s result, whose ``state_dict`` goes into checkpoints."""

    def launch(self, argv: list[str]) -> int:
        """Start the worker processes running ``python -m cnnkit *argv``; return the exit code."""

    def teardown(self) -> None:
        """Leave the process group; called once, also after a failure."""


@dataclass(frozen=True)
class DataRequest:
    """What ``cnnkit train`` hands a dataset factory: ``factory(request) -> DataSplits``.

    ``image_size`` is (height, width) and ``channels`` 1 or 3: what the model takes. A factory
    returns splits of that shape, either in memory (:class:`Split`, uint8 ``(N, C, H, W)``) or as
    :class:`StreamedSplit` over an :class:`ImageSource`; cnnkit decides which streamed data it
    reads into memory (``--data-in-memory``, ``--memory-budget``). ``val_split`` and ``seed``
    say how to split validation off the training data when the dataset has no validation split.
    ``data_dir`` is where datasets known by name keep their files; ``download`` whether they may
    fetch missing ones. ``as_weights`` asks for images read exactly as pretrained weights' own
    ``transforms()`` read them (decoded whole, the shorter side resized to the side over
    ``crop_fraction``, the centre cropped); cnnkit sets it when fine-tuning pretrained weights.
    Without it a reader may take faster ways (a large JPEG decoded at a reduced scale).
    """

    image_size: tuple[int, int]
    channels: int
    val_split: float = 0.2
    seed: int = 0
    data_dir: str = ""
    download: bool = True
    crop_fraction: float = 1.0
    """Share of the centre kept before resizing (pretrained weights' evaluation crop, 224/256)."""
    interpolation: str = "bilinear"
    as_weights: bool = False


@runtime_checkable
class ImageSource(Protocol):
    """Samples a :class:`StreamedSplit` reads one at a time (in ``DataLoader`` workers, so it
    must pickle). ``read`` raises ``cnnkit.contracts.UnreadableImage`` for a sample it cannot
    read; that sample is skipped with a warning."""

    @property
    def labels(self) -> torch.Tensor:
        """int64 ``(N,)``: the class index of every sample."""

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every array ``read`` returns."""

    def __len__(self) -> int: ...

    def read(self, index: int) -> numpy.ndarray:
        """Sample ``index`` as uint8 ``(C, H, W)``."""

    def name(self, index: int) -> str:
        """How messages name sample ``index`` (its file path)."""


@dataclass(frozen=True)
class Preprocessing:
    """How a model's pretrained weights expect their images: ``input_size`` (C, H, W), per-channel
    ``mean`` and ``std`` on the 0..1 scale, resize ``interpolation`` (``bilinear``, ``bicubic``)
    and ``crop_fraction`` (the centre crop's share of the resized image: 224/256 = 0.875)."""

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_fraction: float = 1.0


@dataclass
class Pretrained:
    """What a model entry's ``pretrained(weights)`` metadata callable returns: the model with its
    pretrained weights and head, how its images must be prepared, and a line naming the weights.

    cnnkit replaces the head itself: it is the last ``Linear`` (or 1x1 ``Conv2d``) whose output
    size is the pretrained class count; the stages that ``--freeze N`` counts are the model's
    top-level children (a top-level ``Sequential`` counts its children) before the head.
    """

    model: nn.Module
    preprocessing: Preprocessing
    source: str
    rebuild: tuple[str, dict] | None = None
    """The registered model name and arguments that rebuild this architecture (checkpoints record
    them); None: the backbone's own name, with ``in_channels``."""


@dataclass(frozen=True)
class AugmentParam:
    """One parameter of an augmentation, shown in its help and checked when a spec is parsed.

    ``kind`` is ``int``, ``float``, ``pair`` (two numbers, or one number ``x`` meaning
    ``(-x, x)`` or ``(x, x)`` as the operation says), ``bool`` or ``choice`` (one of ``choices``).
    A ``size`` parameter whose default is None means the model's input size.
    """

    name: str
    kind: str
    default: object = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""


SAMPLE_STAGE = "sample"
"""Per-sample augmentations: ``factory(**params) -> fn(image) -> image`` on one uint8 ``(C, H, W)``
tensor (a torchvision v2 transform is one), drawing from torch's global generator, which cnnkit
seeds for every sample from the run's seed. May change the size. Registered with
``stage="sample"``; ``batched=`` may name a factory of the same parameters giving a
:data:`BATCH_STAGE` function with per-image randomness, used for in-memory data."""
BATCH_STAGE = "batch"
"""Batch augmentations: ``factory(**params) -> fn(images, targets, generator) -> (images,
targets)`` on the training device: float images ``(N, C, H, W)`` in 0..1, targets as class
probabilities ``(N, classes)`` (soft targets allowed), randomness from ``generator`` only.
Registered with ``stage="batch"``."""


_DATA_TYPES = {
    "Split": "cnnkit.data.splits", "StreamedSplit": "cnnkit.data.splits", "DataSplits": "cnnkit.data.splits",
    "UnreadableImage": "cnnkit.data.images",
}


def __getattr__(name: str):
    """The data containers, imported on first use (they need torch)."""
    if name in _DATA_TYPES:
        import importlib

        return getattr(importlib.import_module(_DATA_TYPES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Preprocessing", "Pretrained", "AugmentParam", "BATCH_STAGE", "SAMPLE_STAGE", "DataRequest", "DataSplits", "ImageSource", "Split", "Strategy", "StrategyOptions", "StreamedSplit", "UnreadableImage"]
