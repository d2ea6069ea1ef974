"""Adapting a pretrained network: a new head for the data's classes, and freezing.

The head is found, not declared: the last ``Linear`` (or 1x1 ``Conv2d``, as in SqueezeNet) whose
output size is the pretrained class count. That covers torchvision's ``fc``, ``classifier[-1]``,
``heads.head``, timm's ``head``/``fc`` and cnnkit's own models alike.
"""

from __future__ import annotations

from torch import nn

from cnnkit.errors import CnnkitError, UsageError
from cnnkit.values import Freeze


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
    new: nn.Module
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    elif isinstance(old, nn.Conv2d):
        new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
    else:
        raise CnnkitError(f"The classifier '{name}' is a {type(old).__name__}, not a Linear or 1x1 convolution to replace.")
    set_module(model, name, new)
    return new


def new_heads(model: nn.Module, num_classes: int) -> list[str]:
    """Replace the classifier for ``num_classes``; its dotted name(s). timm models do it
    themselves (``reset_classifier``; their ``pretrained_cfg`` names the heads, two for distilled
    models, and adds one to backbones pretrained without), others get the layer :func:`find_head`
    finds."""
    cfg = getattr(model, "pretrained_cfg", None)
    reset = getattr(model, "reset_classifier", None)
    if callable(reset) and isinstance(cfg, dict) and cfg.get("classifier"):
        names = [cfg["classifier"]] if isinstance(cfg["classifier"], str) else list(cfg["classifier"])
        reset(num_classes)
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


def frozen_modules(model: nn.Module, heads: list[str] | str, freeze: Freeze) -> list[tuple[str, nn.Module]]:
    """The blocks ``freeze`` (``features``, ``none`` or a count of stages; ``auto`` decided) leaves frozen."""
    blocks = stages(model, heads)
    if freeze.mode == "none":
        return []
    if freeze.mode == "features":
        return blocks
    count = freeze.stages
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


class Reached(Exception):
    """Raised by a hook once the activations wanted exist: the rest of the network need not run."""

    def __init__(self, value):
        super().__init__()
        self.value = value


def stop_before(module: nn.Module, inputs):
    raise Reached(inputs[0])


def truncate(model: nn.Module, spec: dict, num_classes: int) -> nn.Module:
    """``model`` cut as ``spec`` (from :func:`earlier_cut`, recorded in checkpoints as
    ``transfer.truncate``) says: the modules with parameters that run after stage ``tap``
    become identities, and the head takes what then reaches it (``width`` features)."""
    for name in spec["removed"]:
        set_module(model, name, nn.Identity())
    fit_head(model, spec, num_classes)
    model.cnnkit_truncate = dict(spec)  # type: ignore[assignment]  # torch types module attributes as tensors or modules only
    return model


def fit_head(model: nn.Module, spec: dict, num_classes: int) -> None:
    """A fresh head for ``num_classes`` taking the ``width`` features that reach it in a cut model."""
    old = get_module(model, spec["head"])
    width = int(spec["width"])
    new = nn.Linear(width, num_classes) if isinstance(old, nn.Linear) else nn.Conv2d(width, num_classes, 1)
    set_module(model, spec["head"], new)


def as_recorded(model: nn.Module, saved: dict) -> nn.Module:
    """``model``, rebuilt by the registered name a checkpoint ``saved`` records, cut as the
    checkpoint records it was (``--freeze auto`` on small, different data); else unchanged."""
    cut = (saved.get("transfer") or {}).get("truncate")
    if not cut:
        return model
    return truncate(model, cut, int(saved["model"]["kwargs"].get("num_classes", len(saved["classes"]))))


EARLIER = 2 / 3
"""Where the small + different quadrant takes its activations: this far through the stages."""


def _after(model: nn.Module, tap: str, probe) -> list[str]:
    """The modules with parameters of their own that ``model`` runs after its module ``tap``."""
    calls, mark = [], []
    hooks = [module.register_forward_pre_hook(lambda m, args, name=name: calls.append(name))
             for name, module in model.named_modules() if any(True for _ in module.parameters(recurse=False))]
    hooks.append(model.get_submodule(tap).register_forward_hook(lambda m, args, out: mark.append(len(calls))))
    try:
        model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    later = calls[mark[0]:] if mark else []
    return list(dict.fromkeys(later))


def earlier_cut(model: nn.Module, heads: list[str], size) -> tuple[dict | None, str]:
    """Where to cut ``model`` for a linear classifier on activations from earlier in the network:
    after stage ``round(2n/3)`` of its ``n`` stages, everything with parameters that runs later
    removed, the head fed what then reaches it (pooled as the network pools). ``(spec,
    description)``, or ``(None, why not)`` when that cannot work (checked on a probe)."""
    import copy

    import torch

    blocks = [name for name, _ in stages(model, heads) if name != "(model parameters)"]
    if len(blocks) < 3 or len(heads) != 1:
        return None, f"it has only {len(blocks)} stage(s)" if len(heads) == 1 else "it has several heads"
    count = max(1, round(EARLIER * len(blocks)))
    tap = blocks[count - 1]
    probe = torch.rand(2, *size, generator=torch.Generator().manual_seed(0))
    trial = copy.deepcopy(model).eval()
    try:
        spec, reaching, outputs = cut_trial(trial, blocks, count, heads[0], probe)
    except (RuntimeError, ValueError, TypeError, AssertionError, IndexError, CnnkitError) as exc:
        lines = str(exc).strip().splitlines()
        return None, f"it cannot be cut after its stage '{tap}' ({lines[0] if lines else type(exc).__name__})"
    if outputs.ndim != 2 or not torch.isfinite(outputs).all() or torch.equal(reaching[0], reaching[1]):
        return None, f"what reaches the head from its stage '{tap}' does not depend on the image"
    return spec, f"the output of stage {count} of {len(blocks)} ('{tap}'), the layers with weights after it removed"


def cut_trial(trial: nn.Module, blocks: list[str], count: int, head: str, probe):
    """``trial`` (a copy) cut after its stage ``blocks[count - 1]`` and run on ``probe``: the cut's
    spec, what reaches the head, and the outputs of a two-class head."""
    import torch

    tap, later_blocks = blocks[count - 1], blocks[count:]
    with torch.no_grad():
        later = _after(trial, tap, probe)
        removed = [n for n in [*later_blocks, *later] if n != head and not any(n.startswith(r + ".") for r in later_blocks)]
        cut_away = list(dict.fromkeys(removed))
        for name in cut_away:
            set_module(trial, name, nn.Identity())
        reaching = _input_of(trial, head, probe)
        width = int(reaching.shape[-1] if isinstance(get_module(trial, head), nn.Linear) else reaching.shape[1])
        spec = {"tap": tap, "removed": cut_away, "head": head, "width": width}
        outputs = truncate(trial, spec, 2)(probe)
    return spec, reaching, outputs


def _input_of(model: nn.Module, name: str, x):
    handle = model.get_submodule(name).register_forward_pre_hook(stop_before)
    try:
        model(x)
    except Reached as reached:
        return reached.value
    finally:
        handle.remove()
    raise CnnkitError(f"the network never runs '{name}'")
