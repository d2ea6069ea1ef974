"""Built-in parallel strategies; each factory takes a ``cnnkit.contracts.StrategyOptions``."""

from cnnkit import hookimpl
from cnnkit.contracts import StrategyRegister


@hookimpl
def register_strategies(register: StrategyRegister) -> None:
    register("auto", "cnnkit.engine.strategies:auto", help="ddp when several GPUs are visible (or under torchrun), else single")
    register("single", "cnnkit.engine.strategies:single", help="One process on one device (the --device choice)")
    register("dp", "cnnkit.engine.strategies:data_parallel",
             help="nn.DataParallel over the visible GPUs in one process (simple, slower than ddp)")
    register("ddp", "cnnkit.engine.strategies:ddp",
             help="DistributedDataParallel, one process per GPU (nccl) or per CPU share (gloo)", distributed=True)
