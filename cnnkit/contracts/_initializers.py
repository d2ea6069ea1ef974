"""The initializer contract: ``factory() -> fn(model)``, or ``fn(model, batch)`` with ``needs_batch``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn


class Initializer(Protocol):
    """Re-initialises ``model`` in place (the whole model, or a fine-tuned model's new head); what
    it returns is ignored."""

    def __call__(self, model: nn.Module, /) -> object: ...


class BatchInitializer(Protocol):
    """For an entry registered with ``needs_batch=True`` (data-dependent, such as LSUV): called once
    with the model on the training device and the first training batch as the model gets it
    (float ``(N, C, H, W)``, normalised, on the same device); never on resume, refused when
    fine-tuning. What it returns is ignored."""

    def __call__(self, model: nn.Module, batch: torch.Tensor, /) -> object: ...


class InitializerFactory(Protocol):
    """Called once per run, when ``--init`` names the entry."""

    def __call__(self) -> Initializer | BatchInitializer: ...


class InitializerRegister(Protocol):
    """The ``register`` that ``register_initializers`` receives.

    ``needs_batch``: call the initializer as ``fn(model, batch)`` (:class:`BatchInitializer`).
    """

    def __call__(self, name: str, factory: InitializerFactory | str, *, help: str = "",
                 needs_batch: bool = False) -> None: ...
