"""Class activation maps: where the network looked for the class it predicted.

HiResCAM (Draelos & Carin 2020), the Grad-CAM variant (Selvaraju et al. 2017) that multiplies a
layer's activations by the gradient of the class score element by element instead of by its
per-channel spatial mean; summed over channels, rectified, scaled up to the image and to 0..1.

The layer is the one whose output feeds the classifier: the last feature map (more than one
position) that the network computes, found by following one image through the model, taken at
the module that produced it (for a ResNet the last block, after its residual addition and ReLU:
``layer4.1`` of torchvision's resnet18, ``stage3.2`` of resnet20; for networks that flatten, the
last pooling). Adaptive pooling layers are not candidates: they are the pooling itself.
``--cam-layer NAME`` chooses another module. Where that map is globally average-pooled into a
linear classifier (ResNets, MobileNets, EfficientNets, DenseNets) the gradient is the same at
every position, so HiResCAM equals Grad-CAM there; where it is flattened into one linear layer
(mnist-cnn), the map before rectification is that layer's own split of the class score (less its
bias) by position. Transformers, which turn maps into tokens, are refused unless a layer is
named. Written here (forward hooks, ``autograd.grad``) rather than taken from a package, so it
works on every convolutional model cnnkit builds without another dependency."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.engine.checkpoint import atomic_write, make_folder
from cnnkit.errors import UsageError

POOLING = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass
class Call:
    """One module's finished forward call that returned a feature map ``(N, C, H, W)`` or tokens
    ``(N, L, D)``."""

    name: str
    output: torch.Tensor
    version: int  # the tensor's in-place version when the module returned it
    block: bool  # the module has children

    @property
    def depth(self) -> int:
        return self.name.count(".") + 1


def is_map(output, sample: torch.Tensor) -> bool:
    """Whether ``output`` is a feature map of ``sample``: ``(N, C, H, W)`` with the sample's batch,
    at most its height and width and its proportions (not channels-last, not attention scores)."""
    if not isinstance(output, torch.Tensor) or output.dim() != 4 or output.shape[0] != sample.shape[0]:
        return False
    (height, width), (in_height, in_width) = output.shape[-2:], sample.shape[-2:]
    expected = in_width * height / in_height
    return height <= in_height and width <= in_width and abs(width - expected) <= 1 + expected / 4


def traced_calls(model: nn.Module, sample: torch.Tensor) -> tuple[list[Call], Counter]:
    """The feature maps and token sequences that a forward pass of ``sample`` returned from
    modules, in the order the modules finished, and how often each module ran."""
    calls: list[Call] = []
    counts: Counter = Counter()

    def record(name: str, module: nn.Module):
        def hook(_module, _args, output):
            counts[name] += 1
            tokens = isinstance(output, torch.Tensor) and output.dim() == 3
            if tokens or (is_map(output, sample) and not isinstance(module, POOLING)):
                calls.append(Call(name, output, output._version, any(True for _ in module.children())))
        return hook

    handles = [module.register_forward_hook(record(name, module)) for name, module in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for handle in handles:
            handle.remove()
    return calls, counts


def feature_layer(model: nn.Module, sample: torch.Tensor) -> str:
    """The name of the module whose output is the last feature map before the classifier (see
    the module docstring); ``sample`` is one normalised input ``(1, C, H, W)``."""
    calls, counts = traced_calls(model, sample)
    maps = [c for c in calls if c.output.dim() == 4]
    refuse_without_maps(calls, maps)
    return map_maker(final_makers(maps), maps, counts).name


def refuse_without_maps(calls: list[Call], maps: list[Call]) -> None:
    """A model whose classifier reads no feature map has no layer to take a heat map at: one that
    computes none, and one that turns its maps into tokens (a transformer)."""
    if not maps:
        raise UsageError("This model computes no feature map (N, C, H, W), so a class activation map has nothing to "
                         "show; --cam applies to CNNs.")
    last = max(i for i, c in enumerate(calls) if c.output.dim() == 4)
    if any(c.output.dim() == 3 for c in calls[last:]):
        raise UsageError(f"This model turns its feature maps into tokens (after '{maps[-1].name}', as a transformer "
                         "does), so a map of a convolutional layer would not show where it looked; --cam applies "
                         "to CNNs (--cam-layer NAME takes a layer anyway).")


def final_makers(maps: list[Call]) -> list[Call]:
    """The calls that returned the last feature map with more than one position (else the last
    map), as the classifier reads it: after the in-place steps applied to it."""
    final = ([c for c in maps if c.output.shape[-2:].numel() > 1] or maps)[-1].output
    makers = [c for c in maps if c.output is final]
    version = max(c.version for c in makers)
    return [c for c in makers if c.version == version]


def map_maker(makers: list[Call], maps: list[Call], counts: Counter) -> Call:
    """Of the calls that returned the same map, the one that names it: of the modules that ran
    once (a module run twice, a shared ReLU, is ambiguous), a block before a layer, then the
    deepest, then the last to finish."""
    once = [c for c in makers if counts[c.name] == 1] or makers
    order = {id(c): i for i, c in enumerate(maps)}
    return max([c for c in once if c.block] or once, key=lambda c: (c.depth, order[id(c)]))


SHOWN_LAYERS = 20
"""Most layers an unknown ``--cam-layer`` lists."""


def map_layers(model: nn.Module, sample: torch.Tensor) -> list[str]:
    """The modules (layers and blocks) whose output is a feature map of ``sample``, in the order
    they finish: the names ``--cam-layer`` takes."""
    calls, _ = traced_calls(model, sample)
    return list(dict.fromkeys(c.name for c in calls if c.output.dim() == 4))


def layer_hint(model: nn.Module, sample: torch.Tensor, name: str, layers: list[str]) -> str:
    """``layers`` (those that give feature maps; the ``SHOWN_LAYERS`` nearest in name to ``name``
    when there are more), in network order, and the default choice."""
    import difflib

    if not layers:
        return "This model gives no feature map (N, C, H, W) at any layer."
    shown, which = layers, "Its layers that give feature maps"
    if len(layers) > SHOWN_LAYERS:
        score = {layer: difflib.SequenceMatcher(None, name.lower(), layer.lower()).ratio() for layer in layers}
        nearest = set(sorted(layers, key=lambda layer: -score[layer])[:SHOWN_LAYERS])
        shown = [layer for layer in layers if layer in nearest]
        which = f"The {SHOWN_LAYERS} nearest in name of its {len(layers)} layers that give feature maps"
    return f"{which}: {', '.join(shown)}{own_choice(model, sample)}."


def named_layer(model: nn.Module, name: str, sample: torch.Tensor) -> nn.Module:
    """The module ``name`` of ``model`` (as ``named_modules`` spells it: a layer or a block); an
    unknown name lists those that give feature maps of ``sample``."""
    from cnnkit.registry import unknown_name_message

    modules = dict(model.named_modules())
    modules.pop("", None)
    if name not in modules:
        layers = map_layers(model, sample)
        hint = layer_hint(model, sample, name, layers)
        raise UsageError("--cam-layer: " + unknown_name_message("layer", name, layers or list(modules), hint))
    return modules[name]


def cam_layer(model: nn.Module, sample: torch.Tensor, name: str = "") -> str:
    """The layer heat maps are taken at: ``name`` once checked to exist and give a feature map of
    ``sample`` (one normalised input), or the one ``feature_layer`` finds."""
    if not name:
        return feature_layer(model, sample)
    seen: list = []
    handle = named_layer(model, name, sample).register_forward_hook(lambda module, args, output: seen.append(output))
    try:
        with torch.no_grad():
            model(sample)
    finally:
        handle.remove()
    output = seen[-1] if seen else None
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else "nothing" if not seen else type(output).__name__
        raise UsageError(f"--cam-layer {name} gives {shape}, not a feature map (N, C, H, W); choose a convolutional "
                         f"layer or block{own_choice(model, sample)}.")
    return name


def own_choice(model: nn.Module, sample: torch.Tensor) -> str:
    try:
        return f" (this model's own choice is '{feature_layer(model, sample)}')"
    except UsageError:
        return ""


def class_activation(model: nn.Module, inputs: torch.Tensor, classes: torch.Tensor, layer: str = "") -> torch.Tensor:
    """Heat maps ``(N, H, W)`` in 0..1 for ``classes`` of ``inputs`` (normalised images), taken at
    the module named ``layer`` (default: ``feature_layer``)."""
    name = layer or feature_layer(model, inputs[:1])
    seen: dict[str, torch.Tensor] = {}
    handle = named_layer(model, name, inputs[:1]).register_forward_hook(lambda module, args, output: seen.__setitem__("maps", output))
    try:
        with torch.enable_grad():
            scores = model(inputs.detach().requires_grad_(True))
            maps = seen["maps"]
            chosen = scores.gather(1, classes[:, None]).sum()
            grads = torch.autograd.grad(chosen, maps)[0]
    finally:
        handle.remove()
    cam = F.relu((grads * maps).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    top = cam.flatten(1).max(1).values.clamp_min(1e-12)
    return (cam / top[:, None, None]).detach()


def overlay_png(image: torch.Tensor, cam: torch.Tensor, title: str) -> bytes:
    """The image beside the image with its heat map laid over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picture = image.permute(1, 2, 0).numpy().astype(np.float32) / 255
    if picture.shape[2] == 1:
        picture = np.repeat(picture, 3, axis=2)
    heat = plt.get_cmap("jet")(cam.numpy())[..., :3]
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3.2))
    left.imshow(picture.clip(0, 1))
    right.imshow((0.55 * picture + 0.45 * heat).clip(0, 1))
    for ax in (left, right):
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def cam_targets(folder: Path, files: list[str], taken: set[Path]) -> list[Path]:
    """``folder/<stem>.cam.png`` for each file; a name already ``taken`` (same-named images from
    different folders) gets a number."""
    targets = []
    for file in files:
        target, count = folder / f"{Path(file).stem}.cam.png", 1
        while target in taken:
            count += 1
            target = folder / f"{Path(file).stem}-{count}.cam.png"
        taken.add(target)
        targets.append(target)
    return targets


def write_cams(trained, items: list[tuple[str, torch.Tensor, int, float]], targets: list[Path], layer: str) -> None:
    """One overlay PNG per (file, uint8 image, predicted class, probability) at its target, maps
    taken at ``layer``."""
    images = torch.stack([image for _, image, _, _ in items])
    maps = class_activation(trained.model, trained.normalise(images), torch.tensor([c for _, _, c, _ in items]), layer)
    for (file, image, predicted, probability), cam, target in zip(items, maps, targets):
        make_folder(target.parent)
        atomic_write(target, overlay_png(image, cam, f"{Path(file).name}: {trained.classes[predicted]} ({100 * probability:.1f}%)"))
