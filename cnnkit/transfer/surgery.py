"""Adapting a pretrained network: a new head for the data's classes, and freezing.

The head is found, not declared: the last ``Linear`` (or 1x1 ``Conv2d``, as in SqueezeNet) whose
output size is the pretrained class count. That covers torchvision's ``fc``, ``classifier[-1]``,
``heads.head``, timm's ``head``/``fc`` and cnnkit's own models alike.
"""

from __future__ import annotations

from torch import nn

from cnnkit.errors import CnnkitError, UsageError


def find_head(model: nn.Module, classes: int | None = None) -> str:
    """The dotted name of the classifier layer (the last one giving ``classes`` outputs, or the
    last Linear when ``classes`` is None)."""
    found = ""
    for name, module in model.named_modules():
        out = module.out_features if isinstance(module, nn.Linear) else (
            module.out_channels if isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) else None)
        if out is not None and (classes is None or out == classes):
            found = name
    if not found:
        raise CnnkitError(f"Found no classifier layer (Linear or 1x1 convolution) with {classes} outputs to replace.")
    return found


def get_module(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name)


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def replace_head(model: nn.Module, name: str, num_classes: int) -> nn.Module:
    """A freshly initialised layer for ``num_classes`` in place of the head; returns it."""
    old = get_module(model, name)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
    set_module(model, name, new)
    return new


def new_heads(model: nn.Module, num_classes: int) -> list[str]:
    """Replace the classifier for ``num_classes``; its dotted name(s). timm models do it
    themselves (``reset_classifier``; their ``pretrained_cfg`` names the heads, two for distilled
    models, and adds one to backbones pretrained without), others get the layer :func:`find_head`
    finds."""
    cfg = getattr(model, "pretrained_cfg", None)
    if hasattr(model, "reset_classifier") and isinstance(cfg, dict) and cfg.get("classifier"):
        names = [cfg["classifier"]] if isinstance(cfg["classifier"], str) else list(cfg["classifier"])
        model.reset_classifier(num_classes)
        present = [n for n in names if _exists(model, n)]
        if present:
            return present
    name = find_head(model)
    replace_head(model, name, num_classes)
    return [name]


def _exists(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


class _Direct(nn.Module):
    """Parameters held by the model itself (a ViT's class token and position embedding)."""

    def __init__(self, params):
        super().__init__()
        self.params = list(params)

    def parameters(self, recurse: bool = True):
        return iter(self.params)


def stages(model: nn.Module, heads: list[str] | str) -> list[tuple[str, nn.Module]]:
    """The blocks ``--freeze N`` counts, in order: the model's own parameters (a class token,
    position embeddings), then top-level children with parameters (a top-level ``Sequential``
    counts its children), the heads and what holds them left out."""
    heads = [heads] if isinstance(heads, str) else heads
    direct = list(model.parameters(recurse=False))
    found: list[tuple[str, nn.Module]] = [("(model parameters)", _Direct(direct))] if direct else []
    for name, child in model.named_children():
        parts = list(child.named_children()) if isinstance(child, nn.Sequential) else [("", child)]
        for sub, module in parts:
            full = f"{name}.{sub}" if sub else name
            if any(head == full or head.startswith(full + ".") for head in heads):
                continue
            if any(True for _ in module.parameters()):
                found.append((full, module))
    return found


def frozen_modules(model: nn.Module, heads: list[str] | str, freeze: str) -> list[tuple[str, nn.Module]]:
    """The blocks ``freeze`` (``features``, ``none`` or a count of stages) leaves frozen."""
    blocks = stages(model, heads)
    if freeze in ("", "none"):
        return []
    if freeze == "features":
        return blocks
    count = int(freeze)
    if count > len(blocks):
        raise UsageError(f"--freeze {count}: this backbone has {len(blocks)} stages ({', '.join(n for n, _ in blocks)}); "
                         f"use at most {len(blocks)}, or 'features'.")
    return blocks[:count]


def freeze(modules: list[tuple[str, nn.Module]]) -> None:
    for _, module in modules:
        for param in module.parameters():
            param.requires_grad_(False)


def unfreeze(model: nn.Module) -> None:
    for param in model.parameters():
        param.requires_grad_(True)


def keep_frozen_in_eval(modules: list[tuple[str, nn.Module]]) -> None:
    """Frozen blocks stay in eval mode while the rest trains: their batch-norm statistics and
    dropout are those of the pretrained network."""
    for _, module in modules:
        module.eval()
