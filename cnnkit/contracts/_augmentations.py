"""The augmentation contract: per-sample operations, batch operations (mixers) and presets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

if TYPE_CHECKING:
    import torch


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


SAMPLE_STAGE: Final = "sample"
"""Per-sample augmentations: ``factory(**params) -> fn(image) -> image`` on one uint8 ``(C, H, W)``
tensor (a torchvision v2 transform is one), drawing from torch's global generator, which cnnkit
seeds for every sample from the run's seed. May change the size. Registered with
``stage="sample"`` (the default); ``batched=`` may name a factory of the same parameters giving a
:class:`BatchAugment` with per-image randomness, used for in-memory data on the training device."""
BATCH_STAGE: Final = "batch"
"""Batch augmentations: ``factory(**params) -> fn(images, targets, generator) -> (images,
targets)`` on the training device: float images ``(N, C, H, W)`` in 0..1, targets as class
probabilities ``(N, classes)`` (soft targets allowed), randomness from ``generator`` only.
Registered with ``stage="batch"``."""
PRESET_STAGE: Final = "preset"
"""A named spec: registered with ``stage="preset"`` and ``spec="op1(...), op2"``; ``{pad}`` in the
spec is 1/8 of the model's input side, ``{big}`` the side times 256/224. Its factory returns the
spec (cnnkit reads ``spec``)."""

Stage = Literal["sample", "batch", "preset"]


class SampleAugment(Protocol):
    """One uint8 ``(C, H, W)`` image in, one out (any size; cnnkit resizes to the input at the end)."""

    def __call__(self, image: torch.Tensor, /) -> torch.Tensor: ...


class BatchAugment(Protocol):
    """Float ``(N, C, H, W)`` images in 0..1 and ``(N, classes)`` targets on the training device,
    randomness from ``generator`` only; returns both (a batched per-sample operation returns the
    targets unchanged)."""

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator,
                 /) -> tuple[torch.Tensor, torch.Tensor]: ...


class SampleAugmentFactory(Protocol):
    """``factory(**params)``: the parameters are those declared with ``params=``, by name."""

    def __call__(self, *args: Any, **params: Any) -> SampleAugment: ...


class BatchAugmentFactory(Protocol):
    """``factory(**params)`` for ``stage="batch"``, and for the ``batched=`` version of a sample one."""

    def __call__(self, *args: Any, **params: Any) -> BatchAugment: ...


class PresetFactory(Protocol):
    """A preset's factory: its spec."""

    def __call__(self) -> str: ...


class BatchedWhen(Protocol):
    """Whether the ``batched=`` version can do these parameters (else the sample one runs)."""

    def __call__(self, params: Mapping[str, Any], /) -> bool: ...


class AugmentationRegister(Protocol):
    """The ``register`` that ``register_augmentations`` receives.

    ``stage``: ``sample`` (default), ``batch`` or ``preset`` (see the ``*_STAGE`` constants);
    ``params``: the parameters a spec may pass, in order; ``batched``: a factory of the same
    parameters giving the batched version of a sample operation; ``batched_when``: which
    parameters that version can do; ``spec``: a preset's operations; ``made_for``: the pictures a
    preset was made for, noted when the images are much smaller; ``eval_crop`` and
    ``eval_crop_source``: the centre share that evaluation reads for a preset whose crops imply
    none, and where that number comes from.
    """

    def __call__(self, name: str, factory: SampleAugmentFactory | BatchAugmentFactory | PresetFactory | str, *,
                 help: str = "", stage: Stage = "sample", params: tuple[AugmentParam, ...] | None = None,
                 batched: BatchAugmentFactory | str | None = None, batched_when: BatchedWhen | str | None = None,
                 spec: str | None = None, made_for: str | None = None, eval_crop: float | None = None,
                 eval_crop_source: str | None = None) -> None: ...
