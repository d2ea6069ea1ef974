"""``cnnkit summary``: a model's layers, output shapes, parameters and cost."""

from __future__ import annotations

import json

import click

from cnnkit.options import checked
from cnnkit.plugins import registry


@click.command()
@click.option("--model", required=True, type=checked("model"), help="Registered model name (see 'cnnkit models').")
@click.option("--input-size", default="", help="CxHxW, e.g. 3x224x224; default: the model's own.")
@click.option("--num-classes", type=click.IntRange(min=1), default=None, help="Default: 1000 for ImageNet-sized models, else 10.")
@click.option("--explain", is_flag=True, help="Show the output-size rule for each convolution and pooling layer.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def summary(model: str, input_size: str, num_classes: int | None, explain: bool, as_json: bool) -> None:
    """Show a model's layers: output shape and parameters of each, and totals (size, multiply-accumulates)."""
    from cnnkit.engine.model_check import build_model
    from cnnkit.engine.plan import checked_input_size
    from cnnkit.errors import UsageError
    from cnnkit.models.summary import format_summary, summarize

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
