"""A model's layers, output shapes, parameters and cost, walked by torchinfo.

``explain`` adds, for each convolution and pooling layer, the output-size rule
``floor((in - k + 2p) / s) + 1`` with the layer's numbers filled in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import nn

WINDOWED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
            nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)


@dataclass
class Layer:
    name: str
    type: str
    output_shape: list[int]
    params: int
    trainable: bool | None
    """None for a layer without parameters."""
    rule: str = ""


@dataclass
class Summary:
    model: str
    input_size: list[int]
    layers: list[Layer] = field(default_factory=list)
    params: int = 0
    trainable_params: int = 0
    size_mb: float = 0.0
    macs: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _pair(value) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def size_rule(module: nn.Module, in_shape: list[int], out_shape: list[int]) -> str:
    """``floor((in - k + 2p) / s) + 1 = out`` per spatial dimension, for conv and pooling layers."""
    kernel, stride, padding = (_pair(getattr(module, attr)) for attr in ("kernel_size", "stride", "padding"))
    dilation = _pair(getattr(module, "dilation", 1))
    parts = []
    for axis, (size, out) in enumerate(zip(in_shape[2:], out_shape[2:])):
        k = dilation[axis] * (kernel[axis] - 1) + 1
        axis_name = "HW"[axis] if len(in_shape) == 4 else f"dim {axis + 1}"
        rounding = "ceil" if getattr(module, "ceil_mode", False) else "floor"
        pad = padding[axis] if isinstance(padding[axis], int) else f"'{padding[axis]}'"
        parts.append(f"{axis_name}: {rounding}(({size} - {k} + 2*{pad}) / {stride[axis]}) + 1 = {out}")
    return "; ".join(parts)


def summarize(model: nn.Module, name: str, input_size: list[int], explain: bool = False) -> Summary:
    import torchinfo

    names = {id(module): path for path, module in model.named_modules()}
    stats = torchinfo.summary(model, input_size=(1, *input_size), depth=100, verbose=0, device="cpu")
    summary = Summary(name, list(input_size), params=stats.total_params, trainable_params=stats.trainable_params,
                      size_mb=stats.total_param_bytes / 2**20, macs=stats.total_mult_adds)
    for info in stats.summary_list:
        if not info.is_leaf_layer or not info.executed:
            continue
        out = list(info.output_size) if info.output_size else []
        rule = ""
        if explain and isinstance(info.module, WINDOWED) and info.input_size:
            rule = size_rule(info.module, list(info.input_size), out)
        own_params = list(info.module.parameters(recurse=False))
        own = sum(p.numel() for p in own_params)
        trainable = all(p.requires_grad for p in own_params) if own_params else None
        summary.layers.append(Layer(names.get(id(info.module), info.var_name), info.class_name, out, own, trainable, rule))
    return summary


def format_summary(summary: Summary) -> str:
    rows = [(layer.name, layer.type, "x".join(map(str, layer.output_shape[1:])), f"{layer.params:,}",
             {True: "yes", False: "no", None: "-"}[layer.trainable]) for layer in summary.layers]
    headers = ("LAYER", "TYPE", "OUTPUT", "PARAMS", "TRAINABLE")
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = [f"{summary.model}, input {'x'.join(map(str, summary.input_size))}"]
    for row, layer in zip([headers, *rows], [None, *summary.layers]):
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        if layer is not None and layer.rule:
            lines.append(" " * (widths[0] + 2) + layer.rule)
    lines.append(
        f"params {summary.params:,} ({summary.trainable_params:,} trainable), {summary.size_mb:.1f} MB; "
        f"{summary.macs:,} multiply-accumulates per image"
    )
    return "\n".join(lines)
