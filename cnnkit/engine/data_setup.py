"""The data a training run reads: asked of its dataset, checked, and placed in memory or left
streaming, before the model sees any of it."""

from __future__ import annotations

from cnnkit.config import TrainConfig
from cnnkit.console import note, warn
from cnnkit.contracts import DataRequest
from cnnkit.data.placement import place
from cnnkit.data.splits import DataSplits, Split, StreamedSplit
from cnnkit.data.streaming import forget_unreadable
from cnnkit.engine.plan import Plan, from_plugin
from cnnkit.errors import CnnkitError, UsageError


def load_data(plan: Plan, request: DataRequest, processes: int, config: TrainConfig, input_size: list[int],
              workers: int) -> DataSplits:
    """The dataset's splits, with what is read into memory read; a training split that an
    augmentation wants as original pictures stays streamed."""
    forget_unreadable()
    data = from_plugin(plan.dataset, lambda: plan.dataset.create(request))
    if not isinstance(data, DataSplits):
        raise CnnkitError(
            f"dataset '{plan.dataset.name}' of plugin '{plan.dataset.plugin}' returned {type(data).__name__}, "
            "not cnnkit.contracts.DataSplits."
        )
    if len(data.train) < processes:
        raise UsageError(
            f"The training split has {len(data.train)} image(s), fewer than the {processes} processes; "
            "use fewer processes (--nproc-per-node) or more data."
        )
    note_adaptation(data.native, input_size, config.backbone or config.model)
    originals = plan.augment.needs_originals and isinstance(data.train, StreamedSplit)
    data = place(data, config.data_in_memory, config.memory_budget, workers, streamed=("train",) if originals else ())
    check_readable(data)
    return data


def prepare_augmentation(resolved, config: TrainConfig, data: DataSplits, input_size: list[int]):
    """``(data, per-sample augmentation, batch augmentation)``: batched on the device when every
    per-sample operation has a batched version (in memory or streamed alike, so both paths see
    the same draws), else per sample where the images are read. Operations that want the original
    picture get the training files streamed whole."""
    from cnnkit.augment.pipeline import RESIZING, BatchAugment, SampleAugment, dry_run

    size = tuple(input_size[1:])
    if resolved.needs_originals and isinstance(data.train, StreamedSplit):
        note(f"streaming the training images at their stored size: {', '.join(n for n in resolved.names if n in RESIZING)} "
             "crops from the original picture.")
        data = data.replace_splits({**data.splits(), "train": StreamedSplit(data.train.source.originals(), data.train.indices)})
    fast = resolved.batchable
    dry_run(resolved, config.augment, input_size[0], size, fast)
    sample = SampleAugment(resolved.sample, size) if resolved.sample and not fast else None
    batched = resolved.sample if fast else []
    batch = BatchAugment(batched, resolved.mixers, config.mix_prob, size) if batched or resolved.mixers else None
    if resolved.mixers and config.mix_prob == 0:
        warn("--mix-prob 0 never mixes; mixup and cutmix in --augment do nothing.")
    return data, sample, batch


def note_adaptation(stored: tuple[int, int, int] | None, wanted: list[int], model: str) -> None:
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
