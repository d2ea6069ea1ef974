"""Built-in parallel strategies; each factory takes a ``cnnkit.contracts.StrategyOptions``."""

from cnnkit import hookimpl


def _lazy(attribute: str):
    def factory(options):
        from cnnkit.engine import strategies

        return getattr(strategies, attribute)(options)

    factory.__name__ = attribute
    return factory


@hookimpl
def register_strategies(register):
    register("auto", _lazy("auto"), help="ddp when several GPUs are visible (or under torchrun), else single")
    register("single", _lazy("single"), help="One process on one device (the --device choice)")
    register("dp", _lazy("data_parallel"), help="nn.DataParallel over the visible GPUs in one process (simple, slower than ddp)")
    register("ddp", _lazy("ddp"), help="DistributedDataParallel, one process per GPU (nccl) or per CPU share (gloo)", distributed=True)
