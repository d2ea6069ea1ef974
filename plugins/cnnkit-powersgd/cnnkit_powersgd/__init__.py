"""cnnkit plugin registering the strategy ``ddp-powersgd``. Importing it imports no torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit import hookimpl

if TYPE_CHECKING:
    from cnnkit.contracts import StrategyRegister

__version__ = "0.1.0"
CNNKIT_API = ">=1.0,<2"


@hookimpl
def register_strategies(register: StrategyRegister) -> None:
    register(
        "ddp-powersgd",
        "cnnkit_powersgd.strategy:PowerSGDStrategy",
        help="ddp sending PowerSGD low-rank gradients (Vogels et al. 2019); CNNKIT_POWERSGD_RANK, _START",
        distributed=True,
    )
