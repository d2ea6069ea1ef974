"""``cnnkit summary``: a model's layers, output shapes, parameters and cost."""

from __future__ import annotations

import json

import click

from cnnkit.cli.flags import table_option
from cnnkit.options import checked
from cnnkit.plugins import registry


@click.command(params=[
    table_option("model", default="", type=checked("backbone"), show_default=False),  # --model or --backbone
    table_option("backbone", help="A fine-tuning backbone (as for 'cnnkit finetune'): shows its new head and what --freeze freezes."),
    table_option("freeze", default="features", show_default=True,
                 help="With --backbone: features, none or N stages (as for 'cnnkit finetune')."),
])
@click.option("--input-size", default="", help="CxHxW, e.g. 3x224x224; default: the model's own.")
@click.option("--num-classes", type=click.IntRange(min=1), default=None, help="Default: 1000 for ImageNet-sized models, else 10.")
@click.option("--explain", is_flag=True, help="Show the output-size rule for each convolution and pooling layer.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def summary(model: str, backbone: str, freeze: str, input_size: str, num_classes: int | None, explain: bool, as_json: bool) -> None:
    """Show a model's layers: output shape and parameters of each, and totals (size, multiply-accumulates).
    With --backbone, the fine-tuning network: its new head and which layers --freeze leaves frozen
    (built without downloading weights)."""
    from cnnkit.errors import UsageError
    from cnnkit.models.check import build_model, checked_input_size
    from cnnkit.models.summary import format_summary, summarize

    if bool(model) == bool(backbone):
        raise UsageError("Pass --model NAME, or --backbone NAME (with --freeze) for a fine-tuning network.")
    if backbone:
        from cnnkit.transfer.summary import frozen_network

        network, size = frozen_network(backbone, freeze, num_classes or 2, input_size)
        result = summarize(network, f"{backbone} (--freeze {freeze})", size, explain=explain)
        click.echo(json.dumps(result.as_dict(), indent=2) if as_json else format_summary(result))
        return
    entry = registry("models").get(model)
    size = list(checked_input_size(entry))
    if input_size:
        parts = input_size.lower().split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise UsageError(f"--input-size '{input_size}' must be CxHxW with positive whole numbers, e.g. 3x224x224.")
        size = [int(p) for p in parts]
    classes = num_classes or (1000 if checked_input_size(entry)[1] >= 200 else 10)
    built = build_model(entry, {"num_classes": classes, "in_channels": size[0]}, size)
    result = summarize(built.eval(), model, size, explain=explain)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else format_summary(result))
