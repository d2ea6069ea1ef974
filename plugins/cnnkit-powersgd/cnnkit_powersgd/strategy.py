"""DistributedDataParallel whose gradients travel as PowerSGD low-rank factors.

PowerSGD (Vogels, Karimireddy and Jaggi, "PowerSGD: Practical Low-Rank Gradient Compression for
Distributed Optimization", NeurIPS 2019) sends each layer's gradient, seen as an ``n x m``
matrix, as two factors ``P`` (``n x r``) and ``Q`` (``m x r``) found by one step of power
iteration, warm-started from the previous step's ``Q``; the part the factors miss is kept
locally and added to the next step's gradient (error feedback). Both factors are averaged with
all-reduce, so it runs on gloo (CPU) and nccl alike. This module uses PyTorch's own hook,
``torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook``; before step ``start`` it runs
plain all-reduce, as DDP does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnnkit.contracts import DistributedStrategy, StrategyOptions, UsageError

if TYPE_CHECKING:
    from torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import PowerSGDState
    from torch.nn.parallel import DistributedDataParallel

RANK_ENV = "CNNKIT_POWERSGD_RANK"
START_ENV = "CNNKIT_POWERSGD_START"


@dataclass(frozen=True)
class PowerSGDSettings:
    """The two settings PyTorch's PowerSGD documentation says to tune.

    ``rank`` is the rank ``r`` of the approximation: lower compresses more. PyTorch suggests
    starting at 1 and doubling (1, 2, 4, ...) until accuracy is satisfactory. ``start`` is the
    step from which gradients are compressed; before it they are all-reduced in full, because
    early training is the most sensitive to inexact gradients. PyTorch suggests about 10% of
    the run's steps, and no fewer than any warm-up; at least 2, because DDP rebuilds its
    gradient buckets after the first step.
    """

    rank: int = 1
    start: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PowerSGDSettings:
        """``CNNKIT_POWERSGD_RANK`` and ``CNNKIT_POWERSGD_START``, each defaulting as above."""
        return cls(
            rank=_whole(environ, RANK_ENV, cls.rank, 1, "the rank r of PowerSGD's approximation"),
            start=_whole(environ, START_ENV, cls.start, 2, "DDP rebuilds its gradient buckets after the first step"),
        )


def _whole(environ: Mapping[str, str], name: str, default: int, least: int, why: str) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < least:
        raise UsageError(f"{name} must be a whole number of at least {least} ({why}), got '{text}'")
    return int(text)


class PowerSGDStrategy(DistributedStrategy):
    """The built-in ``ddp`` strategy with PyTorch's PowerSGD communication hook registered.

    Settings come from the environment (:meth:`PowerSGDSettings.from_env`), read when the
    strategy is created, so a bad value is reported before any worker starts; the workers inherit
    the variables, and every worker checks that all of them use the same settings.
    """

    name = "ddp-powersgd"

    def __init__(self, options: StrategyOptions) -> None:
        self.settings = PowerSGDSettings.from_env()
        super().__init__(options)
        self.state: PowerSGDState | None = None

    def configure_ddp(self, ddp_model: DistributedDataParallel) -> None:
        from torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import PowerSGDState, powerSGD_hook

        settings = self.all_gather_object(self.settings)
        if any(other != self.settings for other in settings):
            seen = ", ".join(f"rank {i}: {s}" for i, s in enumerate(settings))
            raise ValueError(f"the workers disagree on {RANK_ENV}/{START_ENV} ({seen}); set them alike on every node")
        self.state = PowerSGDState(
            process_group=None,
            matrix_approximation_rank=self.settings.rank,
            start_powerSGD_iter=self.settings.start,
        )
        ddp_model.register_comm_hook(self.state, powerSGD_hook)
