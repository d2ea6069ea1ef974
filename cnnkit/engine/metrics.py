"""Loss and accuracy accumulated on the training device.

Updating never synchronises with the host; ``compute()`` reads the totals once (per epoch, or
per progress-bar refresh), summed over all processes when given a reduction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Reduce = Callable[[torch.Tensor], torch.Tensor]


class RunningMetrics:
    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """``loss`` is the batch mean; ``targets`` are class indices or per-class probabilities."""
        n = targets.shape[0]
        labels = targets.argmax(dim=1) if targets.ndim == 2 else targets
        self.loss_sum.add_(loss.detach(), alpha=n)
        self.correct.add_((logits.argmax(dim=1) == labels).sum())
        self.count += n

    def compute(self, reduce: Reduce | None = None) -> dict[str, float]:
        totals = torch.stack([self.loss_sum, self.correct, self.loss_sum.new_tensor(float(self.count))])
        if reduce is not None:
            totals = reduce(totals)
        loss_sum, correct, count = totals.tolist()
        if count == 0:
            return {"loss": float("nan"), "acc": float("nan")}
        return {"loss": loss_sum / count, "acc": correct / count}
