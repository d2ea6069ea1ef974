"""The model contract: ``factory(*, num_classes, in_channels) -> nn.Module``, and pretrained weights."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import nn


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
    """What a model entry's ``pretrained(weights)`` loader returns: the model with its
    pretrained weights and head, how its images must be prepared, and a line naming the weights.

    cnnkit replaces the head itself: it is the last ``Linear`` (or 1x1 ``Conv2d``) whose output
    size is the pretrained class count; the stages that ``--freeze N`` counts are the model's
    top-level children (a top-level ``Sequential`` counts its children) before the head.
    """

    model: nn.Module
    preprocessing: Preprocessing
    source: str
    rebuild: tuple[str, dict[str, object]] | None = None
    """The registered model name and arguments that rebuild this architecture (checkpoints record
    them); None: the backbone's own name, with ``in_channels``."""


class ModelFactory(Protocol):
    """Builds the model for the data: ``num_classes`` outputs (one score per class, before
    softmax) from images with ``in_channels`` channels. Further keyword parameters, each with a
    default, are what ``--model-kwargs`` may set (checked against their annotations). A class
    whose ``__init__`` takes these is a factory too."""

    def __call__(self, *, num_classes: int, in_channels: int) -> nn.Module: ...


class ModelFamilyFactory(Protocol):
    """A family's factory (a name ending in ``/*``): the member's name (without the prefix) first."""

    def __call__(self, member: str, /, *, num_classes: int, in_channels: int) -> nn.Module: ...


class PretrainedLoader(Protocol):
    """``load(weights)``: ``weights`` is "" for the default weights, a name such as
    ``IMAGENET1K_V1``, or a file path. ``cnnkit finetune`` replaces the head and freezes stages."""

    def __call__(self, weights: str = "", /) -> Pretrained: ...


class FamilyLister(Protocol):
    """A family's member names, without the prefix; called only when the family is listed or a
    member is named."""

    def __call__(self) -> Iterable[str]: ...


class FamilyDescriber(Protocol):
    """One member's metadata (the model metadata keys, e.g. ``input_size``)."""

    def __call__(self, member: str, /) -> Mapping[str, object]: ...


class ModelRegister(Protocol):
    """The ``register`` that ``register_models`` receives.

    ``input_size``: the native input (channels, height, width), the size ``cnnkit train`` resizes
    to; ``params``: the parameter count at the native class count, for listings; ``pretrained``:
    a loader of pretrained weights. A name ending in ``/*`` registers a family: ``factory`` is a
    :class:`ModelFamilyFactory`, ``lister`` and ``describe`` are required, ``member_help``
    describes each member.
    """

    def __call__(self, name: str, factory: ModelFactory | ModelFamilyFactory | str, *, help: str = "",
                 input_size: tuple[int, int, int] | None = None, params: int | None = None,
                 pretrained: PretrainedLoader | str | None = None, lister: FamilyLister | str | None = None,
                 describe: FamilyDescriber | str | None = None, member_help: str | None = None) -> None: ...
