"""The built-in parallel strategies: one device, DataParallel, and DistributedDataParallel.

Each implements :class:`cnnkit.contracts.Strategy`. Sharding is shared: every process walks the
same global order in global batches of ``batch_size * world_size`` and takes its own contiguous
share of each, so ``N`` processes with batch ``B`` see exactly the batches one process with batch
``N * B`` would (see :func:`shard_steps`).
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
from torch import nn

from cnnkit.console import warn
from cnnkit.contracts import StrategyOptions
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
    """This rank's indices for each step; a global batch of ``m`` images is split as evenly as
    possible (``m // world_size`` each, one more for the first ``m % world_size`` ranks). A last
    batch with fewer images than processes is dropped, so no process ever steps on nothing."""
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


class _OneProcess:
    """What every single-process strategy shares: rank 0 of 1, collectives are identities."""

    distributed = False
    rank = 0
    world_size = 1
    is_main = True

    def __init__(self, device: torch.device):
        self.device = device

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

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model

    def launch(self, argv: list[str]) -> int:
        raise RuntimeError(f"strategy '{self.name}' runs in this process and launches nothing")

    def teardown(self) -> None:
        pass


class SingleDevice(_OneProcess):
    """Train on one device: the model moves there and is not wrapped."""

    name = "single"

    def wrap(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)


class DataParallelStrategy(_OneProcess):
    """``nn.DataParallel``: one process scatters each batch over the visible GPUs."""

    name = "dp"

    def __init__(self, device: torch.device, device_ids: list[int]):
        super().__init__(device)
        self.device_ids = device_ids

    def wrap(self, model: nn.Module) -> nn.Module:
        return nn.DataParallel(model.to(self.device), device_ids=self.device_ids)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model.module if isinstance(model, nn.DataParallel) else model


class DistributedStrategy:
    """DistributedDataParallel, one process per device: nccl on GPUs, gloo on CPUs.

    Workers are started by torch.distributed's elastic launcher (the engine behind ``torchrun``),
    which sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` for each of them.
    """

    name = "ddp"
    distributed = True

    def __init__(self, options: StrategyOptions):
        self.options = options
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.rank = int(os.environ.get("RANK", 0))
        self.world_size = launched_world_size()
        if options.device == "auto":
            self.device = torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")
        else:
            chosen = select_device(options.device)
            if chosen.type == "cuda":
                chosen = torch.device("cuda", self.local_rank)
            elif chosen.type != "cpu":
                raise UsageError(f"--strategy ddp runs on CUDA or CPU, not '{options.device}'.")
            self.device = chosen
        if options.sync_bn and self.device.type != "cuda":
            raise UsageError("--sync-bn needs CUDA devices (SyncBatchNorm has no CPU kernel); drop it on CPU.")
        self.backend = "nccl" if self.device.type == "cuda" else "gloo"

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
        return DistributedDataParallel(model, device_ids=device_ids)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return getattr(model, "module", model)

    def launch(self, argv: list[str]) -> int:
        from cnnkit.engine.launch import launch_workers

        return launch_workers(argv, self.options)

    def teardown(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def single(options: StrategyOptions) -> SingleDevice:
    return SingleDevice(select_device(options.device))


def data_parallel(options: StrategyOptions) -> _OneProcess:
    count = gpu_count()
    device = select_device(options.device)
    if device.type != "cuda" or count < 2:
        why = f"this machine has {count}" if count < 2 else f"--device {options.device} is not a GPU"
        warn(f"--strategy dp needs at least 2 CUDA GPUs and {why}; running as 'single'.")
        return SingleDevice(device)
    return DataParallelStrategy(torch.device("cuda", 0), list(range(count)))


def ddp(options: StrategyOptions) -> DistributedStrategy:
    return DistributedStrategy(options)


def auto(options: StrategyOptions):
    """ddp when started by torchrun with several processes, or when several GPUs are visible (and
    --device allows them); else single."""
    if launched_world_size() > 1 or (gpu_count() > 1 and options.device in ("auto", "cuda")):
        return DistributedStrategy(options)
    return single(options)
