"""The built-in parallel strategies, and the base classes a strategy plugin builds on.

Each implements :class:`cnnkit.contracts.Strategy`. A plugin gets :class:`SingleProcessStrategy`,
:class:`DistributedStrategy` and :func:`shard_steps` from ``cnnkit.contracts`` (which imports them
from here on first use), so it never needs this module's name. Sharding is shared: every process
walks the same global order in global batches of ``batch_size * world_size`` and takes its own
contiguous share of each, so ``N`` processes with batch ``B`` see exactly the batches one process
with batch ``N * B`` would (see :func:`shard_steps`).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import cast

import torch
from torch import nn

from cnnkit.console import warn
from cnnkit.contracts._strategies import StrategyOptions
from cnnkit.engine.device import select_device
from cnnkit.errors import UsageError

WORKER_ENV = ("LOCAL_RANK", "RANK", "WORLD_SIZE")


def launched_world_size() -> int:
    """``WORLD_SIZE`` when this process was started by torchrun or cnnkit's launcher, else 1."""
    if not in_launched_worker():
        return 1
    try:
        return int(os.environ["WORLD_SIZE"])
    except ValueError:
        return 1


def in_launched_worker() -> bool:
    return all(name in os.environ for name in WORKER_ENV)


def shard_steps(count: int, global_batch: int, rank: int, world_size: int, order: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The sample indices process ``rank`` of ``world_size`` trains on at each step of one pass.

    Step ``k`` covers positions ``[k * global_batch, (k + 1) * global_batch)`` of ``order`` (a
    permutation of ``range(count)``; ``range(count)`` itself when None). Its ``m`` samples are
    split into contiguous shares as evenly as possible: ``m // world_size`` each, one more for the
    first ``m % world_size`` ranks. A last batch with fewer samples than processes is dropped, so
    every process takes the same number of steps and none steps on nothing. A strategy's
    ``shard`` is ``shard_steps(count, global_batch, self.rank, self.world_size, order)``.
    """
    positions = order if order is not None else torch.arange(count)
    steps = []
    for start in range(0, count, global_batch):
        m = min(global_batch, count - start)
        if m < world_size:
            break
        base, extra = divmod(m, world_size)
        offset = start + rank * base + min(rank, extra)
        steps.append(positions[offset:offset + base + (1 if rank < extra else 0)])
    return steps


class SingleProcessStrategy:
    """A complete strategy for one process on one device; the built-in ``single`` is this class.

    Rank 0 of 1, the main process; ``barrier`` does nothing and the collectives return their
    input; every step's whole batch is this process's; ``wrap`` moves the model to the device and
    ``unwrap`` returns it as is. The device is ``--device`` (``auto``: CUDA, then Apple MPS, then
    CPU). The class is its own factory, ``SingleProcessStrategy(options)``, so a plugin subclasses
    it in a module of its own (it imports torch), overrides what differs (typically ``wrap`` and
    ``unwrap``, and ``name``) and registers the subclass by reference::

        class ChannelsLast(SingleProcessStrategy):      # in my_plugin/strategy.py
            name = "channels-last"

            def wrap(self, model):
                return super().wrap(model).to(memory_format=torch.channels_last)

        register("channels-last", "my_plugin.strategy:ChannelsLast")   # in register_strategies

    ``name`` must be the name the strategy is registered under: a run records it, and a
    subclass that sets ``distributed = True`` has its workers started with ``--strategy NAME``.
    ``options`` may also be a ``torch.device``, used as is.
    """

    name: str = "single"
    distributed: bool = False
    rank: int = 0
    world_size: int = 1
    is_main: bool = True

    def __init__(self, options: StrategyOptions | torch.device | None = None) -> None:
        if isinstance(options, torch.device):
            self.options = StrategyOptions(device=str(options))
            self.device = options
        else:
            self.options = options if options is not None else StrategyOptions()
            self.device = select_device(self.options.device)

    def setup(self) -> None:
        pass

    def barrier(self) -> None:
        pass

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def all_gather_object(self, obj: object) -> list[object]:
        return [obj]

    def shard(self, count: int, global_batch: int, order: torch.Tensor | None = None) -> list[torch.Tensor]:
        return shard_steps(count, global_batch, 0, 1, order)

    def wrap(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model

    def launch(self, argv: list[str]) -> int:
        """Never called for a strategy that runs in cnnkit's own process (``distributed = False``):
        there is nothing to start. A subclass that sets ``distributed = True`` overrides it."""
        raise RuntimeError(f"strategy '{self.name}' runs in this process and launches nothing")

    def teardown(self) -> None:
        pass


class DataParallelStrategy(SingleProcessStrategy):
    """``nn.DataParallel``: one process scatters each batch over the visible GPUs."""

    name = "dp"

    def __init__(self, device: torch.device, device_ids: list[int]) -> None:
        super().__init__(device)
        self.device_ids = device_ids

    def wrap(self, model: nn.Module) -> nn.Module:
        return nn.DataParallel(model.to(self.device), device_ids=self.device_ids)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model.module if isinstance(model, nn.DataParallel) else model


class DistributedStrategy:
    """DistributedDataParallel, one process per device: nccl on GPUs, gloo on CPUs; the built-in ``ddp``.

    Workers are started by torch.distributed's elastic launcher (the engine behind ``torchrun``),
    which sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` for each of them; each worker runs
    the same command with ``--strategy NAME``, so a subclass sets ``name`` to the name it is
    registered under. The class is its own factory, ``DistributedStrategy(options)``. To change
    how gradients travel (a communication hook, e.g. PowerSGD or bf16 compression), override
    :meth:`configure_ddp`; register the subclass with ``distributed=True``.
    """

    name: str = "ddp"
    distributed: bool = True

    def __init__(self, options: StrategyOptions) -> None:
        self.options = options
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.rank = int(os.environ.get("RANK", 0))
        self.world_size = launched_world_size()
        self.device = self._choose_device(options)
        if options.sync_bn and self.device.type != "cuda":
            raise UsageError("--sync-bn needs CUDA devices (SyncBatchNorm has no CPU kernel); drop it on CPU.")
        self.backend = "nccl" if self.device.type == "cuda" else "gloo"

    def _choose_device(self, options: StrategyOptions) -> torch.device:
        if options.device == "auto":
            return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")
        chosen = select_device(options.device)
        if chosen.type == "cuda":
            return torch.device("cuda", self.local_rank)
        if chosen.type != "cpu":
            raise UsageError(f"--strategy {self.name} runs on CUDA or CPU, not '{options.device}'.")
        return chosen

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def setup(self) -> None:
        import torch.distributed as dist

        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if not dist.is_initialized():
            dist.init_process_group(backend=self.backend, timeout=timedelta(minutes=10))

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(tensor)
        return tensor

    def all_gather_object(self, obj: object) -> list[object]:
        import torch.distributed as dist

        gathered: list[object] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def shard(self, count: int, global_batch: int, order: torch.Tensor | None = None) -> list[torch.Tensor]:
        return shard_steps(count, global_batch, self.rank, self.world_size, order)

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        if self.options.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        wrapped = DistributedDataParallel(model, device_ids=device_ids)
        self.configure_ddp(wrapped)
        return wrapped

    def configure_ddp(self, ddp_model: torch.nn.parallel.DistributedDataParallel) -> None:
        """Called once in every worker right after the model is wrapped, before its first step;
        nothing by default. The place for ``ddp_model.register_comm_hook(state, hook)``."""

    def unwrap(self, model: nn.Module) -> nn.Module:
        return cast(nn.Module, getattr(model, "module", model))

    def launch(self, argv: list[str]) -> int:
        from cnnkit.engine.launch import launch_workers

        return launch_workers(argv, self.options)

    def teardown(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def single(options: StrategyOptions) -> SingleProcessStrategy:
    return SingleProcessStrategy(options)


def data_parallel(options: StrategyOptions) -> SingleProcessStrategy:
    count = gpu_count()
    device = select_device(options.device)
    if device.type != "cuda" or count < 2:
        why = f"this machine has {count}" if count < 2 else f"--device {options.device} is not a GPU"
        warn(f"--strategy dp needs at least 2 CUDA GPUs and {why}; running as 'single'.")
        return SingleProcessStrategy(device)
    return DataParallelStrategy(torch.device("cuda", 0), list(range(count)))


def ddp(options: StrategyOptions) -> DistributedStrategy:
    return DistributedStrategy(options)


def auto(options: StrategyOptions) -> SingleProcessStrategy | DistributedStrategy:
    """ddp when started by torchrun with several processes, or when several GPUs are visible (and
    --device allows them); else single."""
    if launched_world_size() > 1 or (gpu_count() > 1 and options.device in ("auto", "cuda")):
        return DistributedStrategy(options)
    return single(options)
