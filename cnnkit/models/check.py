"""Building a registered model and checking it takes the run's input, before any training
(``cnnkit train`` and ``cnnkit summary`` build models so).

A model that cannot take the input size gets one error naming the layer where it fails, the
feature map that reached it, and the sizes the model is made for, instead of a shape mismatch
from deep inside PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnkit.errors import CnnkitError, UsageError
from cnnkit.registry import Entry


def checked_input_size(entry: Entry) -> tuple[int, int, int]:
    """A model entry's ``input_size`` metadata (channels, height, width), or an error naming the
    model and the plugin at fault."""
    size = entry.metadata.get("input_size", (3, 224, 224))
    if not (isinstance(size, (tuple, list)) and len(size) == 3 and all(_positive_whole(v) for v in size)):
        raise CnnkitError(
            f"model '{entry.name}' of plugin '{entry.plugin}' declares input_size {size!r}; it must be three "
            "positive whole numbers (channels, height, width). Tell the plugin's author."
        )
    channels, height, width = size
    return channels, height, width


def _positive_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def build_model(entry: Entry, kwargs: dict[str, Any], input_size: Sequence[int]) -> nn.Module:
    """The entry's model (the registry checks it is a module), checked to map a batch of
    ``input_size`` images to one score per class, so a plugin's mistake or an unsuitable size is
    named here."""
    model: nn.Module = entry.create(**kwargs)
    probe = torch.zeros(2, *input_size)
    model.eval()
    trace = LayerTrace(model)
    try:
        with torch.no_grad(), trace:
            output = model(probe)
    except (RuntimeError, ValueError, AssertionError) as exc:  # what PyTorch raises for shapes that do not fit
        native = entry.metadata.get("input_size")
        if native is not None and tuple(native[1:]) != tuple(input_size[1:]) and trace.current is not None:
            raise too_small_or_wrong(entry, input_size, trace.current, exc) from exc
        raise CnnkitError(
            f"model '{entry.name}' of plugin '{entry.plugin}' failed on a batch of shape {tuple(probe.shape)}: "
            f"{type(exc).__name__}: {first_line(exc)} (run with --debug for the traceback)"
        ) from exc
    except Exception as exc:
        raise CnnkitError(
            f"model '{entry.name}' of plugin '{entry.plugin}' failed: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback)"
        ) from exc
    finally:
        model.train()
    expected = (2, kwargs["num_classes"])
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        shown = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise CnnkitError(
            f"model '{entry.name}' of plugin '{entry.plugin}' gives {shown} for a batch of shape {tuple(probe.shape)}; "
            f"expected {expected} (one score per class)."
        )
    return model


class LayerTrace:
    """Records which leaf layer is running and the shape of its input, via forward hooks."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.current: tuple[str, nn.Module, tuple[int, ...]] | None = None
        self.handles: list = []

    def __enter__(self) -> LayerTrace:
        for name, module in self.model.named_modules():
            if name and not list(module.children()):
                self.handles.append(module.register_forward_pre_hook(self._entering(name)))
        return self

    def _entering(self, name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
            self.current = (name, module, shape)

        return hook

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def too_small_or_wrong(entry: Entry, input_size: Sequence[int], current: tuple[str, nn.Module, tuple[int, ...]],
                       exc: Exception) -> UsageError:
    """The size the user asked for does not fit the model: where it fails (``current``: the layer
    running, and the shape of its input), and what it is made for."""
    _, height, width = input_size
    native = entry.metadata["input_size"]
    made_for = f"; it is made for {native[1]}x{native[2]}. Choose that size (or leave the size out to resize to it)"
    layer, module, shape = current
    if len(shape) == 4:
        reaching = f"the feature map is {shape[-2]}x{shape[-1]} when it reaches"
    else:
        reaching = f"{'x'.join(map(str, shape[1:])) or 'its'} features reach"
    return UsageError(
        f"model '{entry.name}' cannot take {height}x{width} images: {reaching} layer '{layer}' "
        f"({type(module).__name__}), which cannot take them ({first_line(exc)}){made_for}."
    )
