"""The data a training run reads: asked of its dataset, checked, and placed in memory or left
streaming, before the model sees any of it. Validation and test images are read at the scale
training shows them: when the augmentation trains on crops of a fixed share of the picture
(``alexnet-2012``: 224 of 256) or its preset names an evaluation crop (``imagenet``), they are the
centre crop of that share, resized to the model's input."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from cnnkit.console import note, warn
from cnnkit.contracts._data import DataRequest
from cnnkit.contracts._models import Preprocessing
from cnnkit.data.images import reads_as_weights
from cnnkit.data.placement import place
from cnnkit.data.splits import AnySplit, DataSplits, Split, StreamedSplit, channel_stats
from cnnkit.data.streaming import auto_workers, forget_unreadable
from cnnkit.engine.seeding import derive_seed
from cnnkit.errors import UsageError
from cnnkit.options import TrainConfig
from cnnkit.recipe.plan import Plan

if TYPE_CHECKING:
    from cnnkit.augment.pipeline import BatchAugment, Resolved, SampleAugment
    from cnnkit.contracts._strategies import Strategy
    from cnnkit.data.sources import AnySource


@dataclass(frozen=True)
class DataSetup:
    """A run's data, ready for the model: read at its input size, placed, normalisation measured
    (or the pretrained weights'), and the augmentation split between the samples and the batch."""

    data: DataSplits
    """On the device (in-memory splits), training images as the augmentation wants them."""
    fixed_size: DataSplits
    """The splits as read at the model's input size, before augmentation may swap the training
    images for their originals (an initializer's first batch, ``--freeze auto``'s probe)."""
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eval_crop: float
    interpolation: str
    workers: int
    sample_augment: SampleAugment | None
    batch_augment: BatchAugment | None


def set_up_data(config: TrainConfig, plan: Plan, strategy: Strategy, native: Sequence[int],
                preprocessing: Preprocessing | None) -> DataSetup:
    """The data of a run whose model takes ``native`` (channels, height, width) images unless
    ``--image-size`` says otherwise; ``preprocessing``: the pretrained weights' (their crop,
    resampling and statistics), None for a model trained from scratch."""
    channels, height, width = native[0], *(plan.image_size or native[1:])
    input_size = (channels, height, width)
    request = DataRequest(
        image_size=(height, width), channels=channels, val_split=config.val_split, seed=config.seed, data_dir=config.data_dir,
        crop_fraction=preprocessing.crop_fraction if preprocessing else 1.0,
        interpolation=preprocessing.interpolation if preprocessing else "bilinear",
    )
    workers = auto_workers() if config.workers is None else config.workers
    data = load_data(plan, request, strategy.world_size, config, input_size, workers)
    if preprocessing is not None and preprocessing.mean:
        mean, std = tuple(preprocessing.mean), tuple(preprocessing.std)  # the statistics the weights were trained with
    elif data.mean is not None and data.std is not None:
        mean, std = tuple(data.mean), tuple(data.std)
    else:
        measured = channel_stats(data.train, derive_seed(config.seed, "stats"), workers)
        mean, std = tuple(measured[0]), tuple(measured[1])
    augmented, sample, batch = prepare_augmentation(plan.augment, config, data, input_size)
    return DataSetup(augmented.to(strategy.device), data, input_size, mean, std, eval_crop(plan.augment, request),
                     request.interpolation, workers, sample, batch)


def load_data(plan: Plan, request: DataRequest, processes: int, config: TrainConfig, input_size: Sequence[int],
              workers: int) -> DataSplits:
    """The dataset's splits, with what is read into memory read; a training split that an
    augmentation wants as original pictures stays streamed. The augmentation is tried first, so
    arguments it cannot use are refused before any data is read."""
    from cnnkit.augment.pipeline import dry_run

    dry_run(plan.augment, config.augment, input_size[0], (input_size[1], input_size[2]), plan.augment.batchable)
    forget_unreadable()
    request = replace(request, as_weights=reads_as_weights(config.backbone, config.pretrained))
    data: DataSplits = plan.dataset.create(request)  # the registry checks it is DataSplits
    if len(data.train) < processes:
        raise UsageError(
            f"The training split has {len(data.train)} image(s), fewer than the {processes} processes; "
            "use fewer processes (--nproc-per-node) or more data."
        )
    note_adaptation(data.native, input_size, config.backbone or config.model)
    data = evaluated_at_training_scale(data, plan.augment, request)
    originals = plan.augment.needs_originals and isinstance(data.train, StreamedSplit)
    data = place(data, config.data_in_memory, config.memory_budget, workers, streamed=("train",) if originals else ())
    check_readable(data)
    return data


def prepare_augmentation(resolved: Resolved, config: TrainConfig, data: DataSplits,
                         input_size: Sequence[int]) -> tuple[DataSplits, SampleAugment | None, BatchAugment | None]:
    """``(data, per-sample augmentation, batch augmentation)``: batched on the device when every
    per-sample operation has a batched version (in memory or streamed alike, so both paths see
    the same draws), else per sample where the images are read. Operations that want the original
    picture get the training files streamed whole."""
    from cnnkit.augment.pipeline import RESIZING, BatchAugment, SampleAugment
    from cnnkit.data.sources import ArraySource, FileSource

    size = (input_size[1], input_size[2])
    train = data.train
    if resolved.needs_originals and isinstance(train, StreamedSplit) and isinstance(train.source, (FileSource, ArraySource)):
        note(f"streaming the training images at their stored size: {', '.join(n for n in resolved.names if n in RESIZING)} "
             "crops from the original picture.")
        data = data.replace_splits({**data.splits(), "train": StreamedSplit(train.source.originals(), train.indices)})
    fast = resolved.batchable
    sample = SampleAugment(resolved.sample, size) if resolved.sample and not fast else None
    batched = resolved.sample if fast else []
    batch = BatchAugment(batched, resolved.mixers, config.mix_prob, size) if batched or resolved.mixers else None
    warn_mix_prob_unused(resolved, config.mix_prob)
    note_tiny_images(resolved, data.native, input_size)
    return data, sample, batch


def warn_mix_prob_unused(resolved: Resolved, mix_prob: float) -> None:
    if resolved.mixers and mix_prob == 0:
        warn("--mix-prob 0 never mixes; mixup and cutmix in --augment do nothing.")
    if not resolved.mixers and mix_prob != TrainConfig.mix_prob:
        warn(f"--mix-prob {mix_prob:g} has no effect: --augment has no mixup or cutmix.")


TINY = 32
"""Images smaller than this on a side are tiny for presets made for ImageNet photos."""


def note_tiny_images(resolved: Resolved, stored: tuple[int, int, int] | None, input_size: Sequence[int]) -> None:
    """One line per preset made for large pictures when the images (as stored, or as the model
    takes them) are tiny."""
    height, width = stored[1:] if stored is not None and min(stored[1:]) < min(input_size[1:]) else input_size[1:]
    if min(height, width) >= TINY:
        return
    for name, made_for in resolved.made_for.items():
        note(f"preset {name} was made for {made_for}; on {height}x{width} images it may cost accuracy "
             "(for small images try cifar, autoaugment-cifar10 or trivialaugment).")


def eval_crop(resolved: Resolved, request: DataRequest) -> float:
    """The centre share of each picture that validation, test, ``evaluate`` and ``predict`` read:
    the pretrained weights' own crop when fine-tuning, else what the augmentation implies."""
    if request.crop_fraction != 1:
        return request.crop_fraction
    return resolved.eval_crop[0]


def evaluated_at_training_scale(data: DataSplits, resolved: Resolved, request: DataRequest) -> DataSplits:
    """``data`` with validation and test images read as the centre crop of the share training
    crops show (see :func:`eval_crop`); unchanged when that is the whole picture."""
    crop, why = resolved.eval_crop
    if request.crop_fraction != 1 or crop >= 1:
        return data
    height, width = request.image_size
    note(f"validation and test images are the centre {crop:.4g} of each picture, resized to {height}x{width} "
         f"({why}); evaluate and predict read them so too.")
    parts = {name: centre_cropped(split, crop, request) if name != "train" else split for name, split in data.splits().items()}
    return data.replace_splits(parts)


def centre_cropped(split: AnySplit, crop: float, request: DataRequest) -> StreamedSplit:
    """``split`` read as the centre ``crop`` of each picture resized to the request's size: files
    and stored arrays are cut from the picture itself (one resampling); other images from the
    size the dataset gives them."""
    from cnnkit.data.sources import ArraySource, FileSource

    size, channels = request.image_size, request.channels
    if isinstance(split, Split):
        arrays = ArraySource(split.images.cpu().numpy(), split.labels.cpu(), size, channels, "image", crop, request.interpolation)
        return StreamedSplit(arrays, torch.arange(len(split)))
    if isinstance(split.source, (FileSource, ArraySource)) and split.source.size is not None:
        cropped = copy.copy(split.source)
        cropped.crop = crop
        return StreamedSplit(cropped, split.indices)
    return StreamedSplit(CentreCropped(split.source, crop, size, channels, request.interpolation), split.indices)


class CentreCropped:
    """Another image source read as the centre ``crop`` of each of its images, resized to ``size``."""

    def __init__(self, source: AnySource, crop: float, size: tuple[int, int], channels: int, resample: str = "bilinear"):
        self.source, self.crop, self.channels, self.resample = source, crop, channels, resample
        self.size = (size[0], size[1])

    @property
    def labels(self) -> torch.Tensor:
        return self.source.labels

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.size)

    def __len__(self) -> int:
        return len(self.source)

    def read(self, index: int) -> np.ndarray:
        from cnnkit.data.images import fit_array

        return fit_array(self.source.read(index), self.size, self.channels, self.crop, self.resample)

    def name(self, index: int) -> str:
        return self.source.name(index) if hasattr(self.source, "name") else f"image {index}"


def note_adaptation(stored: tuple[int, int, int] | None, wanted: Sequence[int], model: str) -> None:
    """One line when the images are resized or change channels to fit the model."""
    if stored is None:
        return
    changes = []
    if tuple(stored[1:]) != tuple(wanted[1:]):
        changes.append(f"resizing {stored[1]}x{stored[2]} -> {wanted[1]}x{wanted[2]}")
    if stored[0] != wanted[0]:
        kinds = {1: "grayscale", 3: "RGB"}
        changes.append(f"{kinds.get(stored[0], f'{stored[0]} channels')} -> {wanted[0]} channel{'s' if wanted[0] > 1 else ''}")
    if changes:
        note(f"{' and '.join(changes)} for {model} (--image-size chooses the size).")


def check_readable(data: DataSplits) -> None:
    """Refuse data left without validation images, or with a class without training images, once
    the files that failed to decode were dropped."""
    if len(data.val) == 0:
        raise UsageError(f"{data.source} has no readable validation images (see the warnings); add some or fix the files.")
    if isinstance(data.train, Split):
        counts = data.train.labels.bincount(minlength=len(data.classes))
        empty = [name for name, count in zip(data.classes, counts.tolist()) if count == 0]
        if empty:
            raise UsageError(f"Class '{empty[0]}' of {data.source} has no readable training images (see the warnings); "
                             "add some or remove the class.")
