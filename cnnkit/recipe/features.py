"""Whether a fine-tuning run trains its head on features computed once, and computing them (how:
:mod:`cnnkit.transfer.features`). Decided while the run is built, before its trainer exists: the
trainer is then made for the data and the network it really runs (the stored features and the
layers after them), and nothing changes the run's parts afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from torch import nn

from cnnkit.console import note
from cnnkit.transfer.features import Reader, extract, find_cut

if TYPE_CHECKING:
    from cnnkit.augment.pipeline import Resolved
    from cnnkit.contracts._strategies import Strategy
    from cnnkit.data.splits import AnySplit, DataSplits
    from cnnkit.transfer.setup import Transfer

QUIET_REASONS = ("more than the head trains", "not everything but the head is frozen")
"""Reasons not to cache that are the usual case (fine-tuning more than the head): no note."""


@dataclass(frozen=True)
class CachedFeatures:
    """The splits as features of the frozen backbone, and the layers that run on them (the head last)."""

    data: DataSplits
    tail: nn.Module


def can_cache(transfer: Transfer, model: nn.Module, augment: Resolved, processes: int, compiled: bool) -> str:
    """Why the features cannot be cached ("" when the cheap conditions hold): ``model`` is the
    network as the strategy wraps it, ``augment`` the run's augmentation, ``processes`` its
    world size, ``compiled`` whether ``--compile`` is on."""
    if not transfer.frozen or transfer.unfreeze_at:
        return "not everything but the head is frozen"
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if trainable != {id(p) for p in transfer.head_module().parameters()}:
        return "more than the head trains"
    if augment.sample or augment.mixers:
        return "with --augment the training images can change from epoch to epoch"
    if len(transfer.heads) > 1:
        return "the model has several heads"
    if processes > 1 or compiled:
        return "it is done in single-process runs without --compile"
    return ""


def cache_features(transfer: Transfer, model: nn.Module, data: DataSplits, reader: Reader, *, augment: Resolved,
                   strategy: Strategy, compiled: bool, input_size: Sequence[int]) -> CachedFeatures | None:
    """The splits' features and the network's tail when they can be cached (see
    :func:`can_cache`), else None, with a note saying why when that is unusual."""
    why_not = can_cache(transfer, model, augment, strategy.world_size, compiled)
    cut = why_not or find_cut(transfer.model, transfer.head, transfer.frozen, input_size, strategy.device)
    if isinstance(cut, str):
        if cut not in QUIET_REASONS:
            note(f"features are not cached ({cut}); the frozen backbone runs every epoch.")
        return None
    parts = {name: extract(transfer.model, transfer.head, split, reader, cut=cut.name) for name, split in data.splits().items()}
    after = "" if cut.name == transfer.head else f", from '{cut.name}' on (it behaves differently in training)"
    note(f"features of the frozen backbone computed once ({parts['train'].images.shape[1]} per image); "
         f"epochs train the head on them{after}.")
    splits = cast("dict[str, AnySplit]", parts)  # a FeatureSplit serves what the loop asks of a split: len, labels, batches
    return CachedFeatures(data.replace_splits(splits), cut.tail)
