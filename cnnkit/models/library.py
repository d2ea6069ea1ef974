"""Models from torchvision and timm, built with cnnkit's number of classes and input channels.

torchvision's classification models are registered under their own names. Enumerating them means
importing torchvision (a second or two), so the names and input sizes are cached per installed
torchvision version, found with ``importlib.metadata`` without importing it: only the first
listing after an install pays. timm's models form the family ``timm/*``, enumerated only when
asked for. Random initialisation only: pretrained weights are the fine-tuning command's concern.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import partial
from importlib import metadata

from cnnkit.contracts._registration import Reference
from cnnkit.data.cache import cache_dir

CACHE_FORMAT = 2
"""Bumped when what is cached changes, so an old cache file is not read."""
WITHOUT_AUX = ("googlenet", "inception_v3")
"""Models whose auxiliary classifiers are on by default without weights; cnnkit trains one head."""
TIMM_PRETRAINED = Reference("cnnkit.transfer.pretrained:timm_pretrained")
"""timm's pretrained loader, imported only when fine-tuning asks for one (it belongs to transfer)."""


def torchvision_models() -> dict[str, list[int]]:
    """``{name: input_size}`` for every torchvision classification model, cached per version."""
    try:
        version = metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        return {}
    path = cache_dir() / f"torchvision-{version}-models-v{CACHE_FORMAT}.json"
    try:
        cached = json.loads(path.read_text())
        if isinstance(cached, dict) and all(
            isinstance(size, list) and len(size) == 3 and all(isinstance(v, int) for v in size) for size in cached.values()
        ):
            return cached
    except (OSError, ValueError):
        pass
    import torchvision.models as classification
    from torchvision.models import get_model_weights, list_models

    found = {}
    for name in list_models(module=classification):
        try:
            crop = get_model_weights(name).DEFAULT.transforms().crop_size[0]
        except (AttributeError, ValueError, IndexError, TypeError):
            crop = 224
        if name.startswith("vit_"):
            crop = 224  # built without weights, a ViT takes 224 (its default weights may be larger)
        found[name] = [3, int(crop), int(crop)]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
            tmp.write(json.dumps(found, sort_keys=True))
        os.replace(tmp.name, path)
    except OSError:
        pass  # an unwritable cache costs the torchvision import at every listing, nothing else
    return found


def adapt_in_channels(model, in_channels: int):
    """Replace the stem (the first 3-channel convolution) for other than 3 input channels; it is
    initialised like a fresh PyTorch convolution."""
    from torch import nn

    if in_channels == 3:
        return model
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3 and child.groups == 1:
                padding = child.padding if isinstance(child.padding, str) else _pair(child.padding)
                setattr(parent, name, nn.Conv2d(
                    in_channels, child.out_channels, _pair(child.kernel_size), _pair(child.stride), padding,
                    _pair(child.dilation), 1, child.bias is not None,
                ))
                return model
    raise ValueError(f"found no 3-channel stem convolution to adapt to {in_channels} channels")


def _pair(values: tuple[int, ...]) -> tuple[int, int]:
    """A 2-d convolution's (height, width) setting, as its constructor takes it."""
    height, width = values
    return height, width


def torchvision_model(name: str, *, num_classes: int = 1000, in_channels: int = 3, **kwargs):
    from torchvision.models import get_model

    if name in WITHOUT_AUX:
        kwargs.setdefault("aux_logits", False)
        kwargs.setdefault("init_weights", True)
    return adapt_in_channels(get_model(name, weights=None, num_classes=num_classes, **kwargs), in_channels)


def timm_names() -> list[str]:
    """timm's architectures and their pretrained tags (``resnet18`` and ``resnet18.a1_in1k``)."""
    import timm

    return sorted(set(timm.list_models()) | set(timm.list_pretrained()))


def timm_metadata(name: str) -> dict:
    import timm

    size = timm.get_pretrained_cfg_value(name, "input_size") if hasattr(timm, "get_pretrained_cfg_value") else None
    return {"input_size": tuple(size) if size else (3, 224, 224), "pretrained": partial(TIMM_PRETRAINED, name)}


def timm_model(name: str, *, num_classes: int = 1000, in_channels: int = 3, **kwargs):
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs)
