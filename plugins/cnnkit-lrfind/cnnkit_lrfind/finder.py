"""The learning-rate range test as fastai's ``Learner.lr_find`` runs it (Smith, "Cyclical Learning
Rates for Training Neural Networks", 2017, section 3.3; fastai ``callback/schedule.py``).

Step ``i`` of ``num_it`` trains one batch at ``start_lr * (end_lr / start_lr) ** (i / num_it)``
(every parameter group at that rate). The loss is recorded smoothed as fastai's ``AvgSmoothLoss``
does (an exponential moving average with ``beta`` 0.98, divided by ``1 - beta ** steps`` to remove
its bias towards the zero it starts from). With ``stop_div`` the test stops after the step whose
smoothed loss exceeds 4 times the lowest so far (that step is recorded, as fastai's recorder does);
a loss that stops being finite ends it too (not recorded). The model's and the optimizer's states
are put back afterwards: the test trains nothing for real.

Suggestions are computed on the recorded curve without its first ``num_it // 10`` and last 5
points, as ``lr_find`` does, by fastai's own rules, transcribed exactly: ``valley`` (fastai's
default since 2.5), ``steep`` (the steepest descent: the older default) and ``minimum`` (a tenth
of the rate at the lowest loss).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

START_LR = 1e-7
END_LR = 10.0
NUM_IT = 100
BETA = 0.98
DIVERGENCE = 4.0
SKIP_END = 5
"""Points left off the end of the curve for suggestions and the plot (fastai's ``skip_end``)."""


@dataclass
class Curve:
    """What a range test recorded: the rate and the smoothed loss of every step it ran."""

    lrs: list[float]
    losses: list[float]
    num_it: int
    stopped: str = ""
    """Why it ended before ``num_it`` steps ("" when it ran them all)."""


@dataclass(frozen=True)
class Suggestion:
    rule: str
    lr: float
    point: tuple[float, float]
    """Where the rule points on the curve (rate, smoothed loss), as fastai marks it on the plot."""


def schedule(start_lr: float, end_lr: float, num_it: int) -> list[float]:
    """fastai's ``SchedExp(start_lr, end_lr)`` at ``i / num_it`` for each step ``i``."""
    return [start_lr * (end_lr / start_lr) ** (i / num_it) for i in range(num_it)]


class SmoothedLoss:
    """fastai's ``AvgSmoothLoss``: ``value = beta * value + (1 - beta) * loss``, reported divided by
    ``1 - beta ** count``."""

    def __init__(self, beta: float = BETA):
        self.beta, self.value, self.count = beta, 0.0, 0

    def add(self, loss: float) -> float:
        self.count += 1
        self.value = self.beta * self.value + (1 - self.beta) * loss
        return self.value / (1 - self.beta**self.count)


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer, step: Callable[[], float], *,
               start_lr: float = START_LR, end_lr: float = END_LR, num_it: int = NUM_IT, stop_div: bool = True,
               beta: float = BETA) -> Curve:
    """Run the test: ``step()`` trains one batch with ``optimizer`` (at the rate set in its groups)
    and returns the batch's loss. ``model`` and ``optimizer`` end as they started."""
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    curve = Curve([], [], num_it)
    smoothed, best = SmoothedLoss(beta), math.inf
    try:
        for lr in schedule(start_lr, end_lr, num_it):
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = smoothed.add(step())
            if not math.isfinite(loss):
                curve.stopped = f"the loss stopped being finite at lr {lr:.2e}"
                break
            curve.lrs.append(lr)
            curve.losses.append(loss)
            best = min(best, loss)
            if stop_div and loss > DIVERGENCE * best:
                curve.stopped = f"the loss diverged (over {DIVERGENCE:g}x its minimum) at lr {lr:.2e}"
                break
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    return curve


def valley(lrs: list[float], losses: list[float]) -> tuple[float, int]:
    """fastai's ``valley``: ``lds[i]`` is the length of the longest decreasing sequence of losses
    ending at point ``i``; the longest one, read as the valley of that many points ending there,
    and the point half way down it (a third plus a sixth). Follows fastai's definition step by step,
    quirks included (the valley is taken to start one point before its first, so an index of -1,
    the last point, is possible, as in fastai)."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), idx


def steep(lrs: list[float], losses: list[float]) -> tuple[float, int]:
    """fastai's ``steep``: the rate where the loss falls fastest against log(rate) (the first such)."""
    grads = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(len(lrs) - 1)]
    idx = min(range(len(grads)), key=grads.__getitem__)
    return float(lrs[idx]), idx


def minimum(lrs: list[float], losses: list[float]) -> tuple[float, int]:
    """fastai's ``minimum``: a tenth of the rate at the lowest loss (the point marked is the minimum)."""
    idx = min(range(len(losses)), key=losses.__getitem__)
    return float(lrs[idx]) / 10, idx


RULES: dict[str, Callable[[list[float], list[float]], tuple[float, int]]] = {
    "valley": valley, "steep": steep, "minimum": minimum,
}


def suggest(curve: Curve, rule: str = "valley") -> Suggestion:
    """The rule's rate on the curve, as ``lr_find`` computes it (first tenth and last 5 left off);
    ``ValueError`` when too little of the curve is left."""
    first = curve.num_it // 10
    lrs, losses = curve.lrs[first:-SKIP_END], curve.losses[first:-SKIP_END]
    needed = 2 if rule == "steep" else 1
    if len(lrs) < needed:
        raise ValueError(
            f"the test recorded {len(curve.lrs)} step(s); a suggestion needs more than {first + SKIP_END + needed - 1} "
            f"(it leaves off the first {first} and the last {SKIP_END})"
        )
    lr, idx = RULES[rule](lrs, losses)
    return Suggestion(rule, lr, (lrs[idx], losses[idx]))
