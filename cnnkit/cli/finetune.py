"""``cnnkit finetune``: ``cnnkit train`` from a pretrained backbone, with the transfer options and
the transfer recipe's defaults (SGD at 1e-3 with momentum 0.9, the rate divided by 10 every 7
epochs, as torchvision's transfer-learning tutorial)."""

from __future__ import annotations

import copy

import click

from cnnkit.cli.train import train
from cnnkit.options import checked

RECIPE = {"optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "scheduler": "step", "step_size": 7, "gamma": 0.1,
          "weight_decay": 0.0, "label_smoothing": 0.0, "epochs": 10}
HIDDEN = ("model", "model_kwargs")

TRANSFER_OPTIONS = [
    click.Option(["--backbone"], type=checked("backbone"), default="",
                 help="A torchvision model (resnet18, vgg16, ...), a timm model (timm/resnet18.a1_in1k), or a cnnkit "
                 "checkpoint or run directory."),
    click.Option(["--weights"], type=checked("weights"), default="",
                 help="Pretrained weights: a torchvision name (DEFAULT, IMAGENET1K_V1, ...) or a .pth/.safetensors file; "
                 "default: the model's default pretrained weights."),
    click.Option(["--pretrained/--no-pretrained"], default=True, show_default=True,
                 help="--no-pretrained: the same network from a random initialisation (the from-scratch baseline; "
                 "everything trains: --freeze none)."),
    click.Option(["--freeze"], type=checked("freeze"), default="features", show_default=True,
                 help="features (train only the new head), none (fine-tune everything), N (freeze the first N stages) "
                 "or auto (the four-quadrant rule: by the data's size and similarity; it prints its decision)."),
    click.Option(["--unfreeze-at"], type=checked("unfreeze_at"), default=0,
                 help="From this epoch on, train the whole network (at --backbone-lr-mult, default 0.1, of the rate)."),
    click.Option(["--backbone-lr-mult"], type=checked("backbone_lr_mult"), default=None,
                 help="Learning-rate factor (above 0) for the backbone's trainable parameters (discriminative rates); "
                 "default 0.1 with --unfreeze-at or when --freeze auto fine-tunes large similar data, else 1."),
    click.Option(["--similar/--different"], default=None,
                 help="For --freeze auto: say whether the data resembles the pretraining data (default: a linear probe decides)."),
]


def _finetune_params() -> list[click.Parameter]:
    params = []
    for param in train.params:
        if param.name in HIDDEN:
            continue
        if param.name in RECIPE:
            param = copy.copy(param)
            param.default = RECIPE[param.name]
        params.append(param)
    return params + TRANSFER_OPTIONS


def _run(**options) -> None:
    from pathlib import Path

    from click.core import ParameterSource

    from cnnkit.errors import UsageError
    from cnnkit.transfer.setup import checkpoint_path

    ctx = click.get_current_context()
    if not options["backbone"] and not options["resume"]:
        raise UsageError("Missing --backbone: a torchvision or timm model name, or a cnnkit run or checkpoint.")
    if not options["pretrained"] and ctx.get_parameter_source("freeze") == ParameterSource.DEFAULT:
        options["freeze"] = "none"  # from scratch, everything trains
    if options["backbone"] and checkpoint_path(options["backbone"]) is not None:
        options["backbone"] = str(Path(options["backbone"]).expanduser().resolve())  # resumable from anywhere
    options.update(model="mnist-cnn", model_kwargs="")  # unused: the backbone is the model
    train.callback(**options)


finetune = click.Command(
    "finetune", params=_finetune_params(), callback=_run,
    help="Fine-tune a pretrained backbone on a dataset (transfer learning) and write a run directory.\n\n"
    "Takes the options of 'cnnkit train' too, with the transfer recipe's defaults.",
    short_help="Fine-tune a pretrained backbone (transfer learning)",
)
