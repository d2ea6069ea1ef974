"""``cnnkit finetune``: ``cnnkit train`` from a pretrained backbone, with the transfer options and
the transfer recipe's defaults (SGD at 1e-3 with momentum 0.9, the rate divided by 10 every 7
epochs, as torchvision's transfer-learning tutorial; the option table holds them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cnnkit.cli.training import run_training, training_command


def _run(ctx: click.Context, options: dict[str, Any]) -> Any:
    from cnnkit.errors import UsageError
    from cnnkit.transfer.setup import checkpoint_path

    if not options["backbone"] and not options["resume"]:
        raise UsageError("Missing --backbone: a torchvision or timm model name, or a cnnkit run or checkpoint.")
    if options["backbone"] and checkpoint_path(options["backbone"]) is not None:
        options["backbone"] = str(Path(options["backbone"]).expanduser().resolve())  # resumable from anywhere
    return run_training(ctx, options)


finetune = training_command(
    "finetune", _run,
    help="Fine-tune a pretrained backbone on a dataset (transfer learning) and write a run directory.\n\n"
    "Takes the options of 'cnnkit train' too, with the transfer recipe's defaults.",
    short_help="Fine-tune a pretrained backbone (transfer learning)",
)
