"""The network ``cnnkit finetune`` would train, for ``cnnkit summary --backbone``: the backbone's
architecture (no weights are downloaded), its new head, and what ``--freeze`` freezes."""

from __future__ import annotations

from dataclasses import replace

from cnnkit.errors import UsageError
from cnnkit.options import TrainConfig


def frozen_network(backbone: str, freeze: str, num_classes: int, input_size: str):
    from cnnkit.plugins import registry
    from cnnkit.transfer.setup import Transfer, check_options, checkpoint_path, load_pretrained

    if freeze == "auto":
        raise UsageError("--freeze auto decides from the data; summary takes features, none or a number of stages.")
    config = TrainConfig(backbone=backbone, freeze=freeze)
    check_options(config)
    entry = None if checkpoint_path(backbone) else registry("models").get(backbone)
    unloaded = replace(config, pretrained=checkpoint_path(backbone) is not None)
    pretrained = load_pretrained(entry, unloaded)  # a library backbone is built without its weights
    transfer = Transfer.build(pretrained, num_classes, config)
    size = list(pretrained.preprocessing.input_size)
    if input_size:
        parts = input_size.lower().split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise UsageError(f"--input-size '{input_size}' must be CxHxW with positive whole numbers, e.g. 3x224x224.")
        size = [int(p) for p in parts]
    return transfer.model, size
