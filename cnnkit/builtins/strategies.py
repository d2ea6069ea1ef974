"""Built-in parallel strategies."""

from cnnkit import hookimpl


def single(*, device):
    from cnnkit.engine.strategy import SingleDevice

    return SingleDevice(device=device)


@hookimpl
def register_strategies(register):
    register("single", single, help="One device (the --device choice); no wrapping")
