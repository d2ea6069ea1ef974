"""The training-session contract: what :func:`cnnkit.contracts.prepare_training` returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn


class TrainingSession(Protocol):
    """A model, its optimizer and its training data built as ``cnnkit train`` builds them, in this
    process. ``step()`` trains one batch as the trainer does, at the rate in the optimizer's groups."""

    model: nn.Module  # the plain module (not wrapped by the strategy)
    optimizer: torch.optim.Optimizer
    classes: list[str]  # the class names, in label order
    model_name: str
    data_name: str  # the --data option (a dataset name or a folder)

    def step(self) -> float: ...  # one optimizer step on the next training batch; its loss
    def close(self) -> None: ...  # tear the strategy down; call once done, also after a failure
