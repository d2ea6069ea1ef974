"""Optimizers and learning-rate schedules by name."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from cnnkit.errors import UsageError
from cnnkit.registry import unknown_name_message

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine", "onecycle")
ONECYCLE_MIN_STEPS = 20
"""Fewer steps than this leave onecycle no room between warm-up and annealing (cnnkit warns)."""


def check_choice(noun: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(unknown_name_message(noun, value, list(choices), f"Choose one of: {', '.join(choices)}."))
    return value


def param_groups(model: torch.nn.Module, weight_decay: float, include_frozen: bool = False) -> list[dict]:
    """Two groups, as timm's ``param_groups_weight_decay`` makes: weight decay for weights, none
    for biases and normalisation parameters (every parameter of one dimension or fewer), nor for
    the names a model lists in ``no_weight_decay()``. Frozen parameters are left out unless
    ``include_frozen``."""
    listed = getattr(model, "no_weight_decay", None)
    skip = set(listed()) if callable(listed) else set()
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad and not include_frozen:
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") or name in skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter] | list[dict],
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    nesterov: bool,
) -> torch.optim.Optimizer:
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def build_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    step_size: int,
    gamma: float,
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, bool]:
    """The scheduler and whether it steps after every batch (True) or every epoch (False)."""
    check_choice("scheduler", name, SCHEDULERS)
    if name == "none":
        return None, False
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma), False
    total = max(1, epochs * steps_per_epoch)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), True
    max_lr = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total), True
