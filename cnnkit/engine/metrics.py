"""Loss and accuracy accumulated on the training device.

Updating never synchronises with the host; ``compute()`` reads the totals once (per epoch, or
per progress-bar refresh).
"""

from __future__ import annotations

import torch


class RunningMetrics:
    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        n = targets.shape[0]
        self.loss_sum += loss.detach().double() * n
        self.correct += (logits.argmax(dim=1) == targets).sum()
        self.count += n

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            return {"loss": float("nan"), "acc": float("nan")}
        totals = torch.stack([self.loss_sum, self.correct.double()]).tolist()
        return {"loss": totals[0] / self.count, "acc": totals[1] / self.count}
