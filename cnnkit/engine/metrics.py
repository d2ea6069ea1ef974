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
        self.loss_weight = torch.zeros((), dtype=torch.float64, device=device)
        """What the batch losses are weighted by in the pass's mean: image counts, or class weights."""
        self.correct = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """``loss`` is the batch mean; ``targets`` are class indices or per-class probabilities.
        ``weight``: when ``loss`` is a weighted mean (class weights), the sum of its images'
        weights, so the pass's loss is the weighted mean over all its images (as one
        ``F.cross_entropy(weight=...)`` over them would be), whatever the batch size."""
        n = targets.shape[0]
        labels = targets.argmax(dim=1) if targets.ndim == 2 else targets
        if weight is None:
            self.loss_sum.add_(loss.detach(), alpha=n)
            self.loss_weight.add_(n)
        else:
            self.loss_sum.add_(loss.detach() * weight)
            self.loss_weight.add_(weight)
        self.correct.add_((logits.argmax(dim=1) == labels).sum())
        self.count += n

    def compute(self, reduce: Reduce | None = None) -> dict[str, float]:
        totals = torch.stack([self.loss_sum, self.correct, self.loss_sum.new_tensor(float(self.count)), self.loss_weight])
        if reduce is not None:
            totals = reduce(totals)
        loss_sum, correct, count, loss_weight = totals.tolist()
        if count == 0:
            return {"loss": float("nan"), "acc": float("nan")}
        return {"loss": loss_sum / loss_weight, "acc": correct / count}
