"""The public strategy building blocks a plugin gets from ``cnnkit.contracts``."""

import json

import pytest
import torch
from torch import nn

from cnnkit.contracts import Strategy, StrategyOptions
from cnnkit.engine import strategies

OPTIONS = StrategyOptions(device="cpu")


def test_the_contract_exports_the_building_blocks_of_the_builtin_strategies():
    import cnnkit.contracts as contracts

    assert contracts.SingleProcessStrategy is strategies.SingleProcessStrategy
    assert contracts.DistributedStrategy is strategies.DistributedStrategy
    assert contracts.shard_steps is strategies.shard_steps
    assert "every process takes the same number of steps" in " ".join(strategies.shard_steps.__doc__.split())


def test_the_single_process_base_is_a_complete_strategy_and_is_the_builtin_single():
    strategy = strategies.SingleProcessStrategy(OPTIONS)
    assert isinstance(strategy, Strategy) and type(strategies.single(OPTIONS)) is strategies.SingleProcessStrategy
    assert (strategy.name, strategy.distributed, strategy.rank, strategy.world_size, strategy.is_main) == ("single", False, 0, 1, True)
    assert strategy.device == torch.device("cpu") and strategy.options is OPTIONS
    strategy.setup()
    strategy.barrier()
    tensor = torch.tensor([1.0, 2.0])
    assert strategy.all_reduce(tensor) is tensor and strategy.all_gather_object("x") == ["x"]
    order = torch.randperm(10)
    assert [s.tolist() for s in strategy.shard(10, 4, order)] == [order[:4].tolist(), order[4:8].tolist(), order[8:].tolist()]
    model = nn.Linear(2, 2)
    assert strategy.wrap(model) is model and strategy.unwrap(model) is model
    with pytest.raises(RuntimeError, match="strategy 'single' runs in this process and launches nothing"):
        strategy.launch(["train"])
    strategy.teardown()
    assert strategies.SingleProcessStrategy(torch.device("cpu")).options.device == "cpu", "a device is used as is"


def test_a_plugin_subclass_of_the_single_process_base_trains(run_cli, install_plugin, image_folder, tmp_path):
    install_plugin("cnnkit-recorder", """
        from cnnkit import hookimpl

        CNNKIT_API = ">=1.0,<2"
        WRAPPED = []

        def recorder(options):
            from cnnkit.contracts import SingleProcessStrategy

            class Recorder(SingleProcessStrategy):
                name = "recorder"

                def wrap(self, model):
                    WRAPPED.append(type(model).__name__)
                    return super().wrap(model)

            return Recorder(options)

        @hookimpl
        def register_strategies(register):
            register("recorder", recorder, help="single, recording what it wraps")
    """)
    result = run_cli("train", "--strategy", "recorder", "--data", str(image_folder), "--epochs", "1", "--quiet",
                     "--out", str(tmp_path), "--name", "r")
    assert result.code == 0, result.err
    import cnnkit_recorder

    assert cnnkit_recorder.WRAPPED == ["MnistCNN"], "the one model of the run, wrapped once"
    assert json.loads((tmp_path / "r" / "config.json").read_text())["strategy"] == "recorder"
    assert (tmp_path / "r" / "last.pt").is_file()


@pytest.fixture
def one_process_group():
    """A gloo process group of one (this process), so DDP can wrap a model without workers."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_configure_ddp_gets_the_wrapped_model_before_its_first_step(one_process_group):
    from torch.nn.parallel import DistributedDataParallel

    seen = []

    class Hooked(strategies.DistributedStrategy):
        name = "hooked"

        def configure_ddp(self, ddp_model):
            seen.append(ddp_model)
            ddp_model.register_comm_hook(None, halve)

    def halve(state, bucket):
        future = torch.futures.Future()
        future.set_result(bucket.buffer() / 2)
        return future

    strategy = Hooked(OPTIONS)
    assert isinstance(strategy, Strategy) and strategy.distributed and strategy.backend == "gloo"
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    plain = strategies.DistributedStrategy(OPTIONS).wrap(nn.Linear(3, 1))
    plain.module.load_state_dict(model.state_dict())
    wrapped = strategy.wrap(model)
    assert seen == [wrapped] and isinstance(wrapped, DistributedDataParallel) and strategy.unwrap(wrapped) is model
    x = torch.randn(4, 3)
    wrapped(x).sum().backward()
    plain(x).sum().backward()
    torch.testing.assert_close(model.weight.grad, plain.module.weight.grad / 2, msg="the hook made the gradients")
    strategy.teardown()
