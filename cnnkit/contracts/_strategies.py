"""The strategy contract: ``factory(options: StrategyOptions) -> Strategy``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class StrategyOptions:
    """What ``cnnkit train`` hands a strategy factory: ``factory(options) -> Strategy``.

    ``device`` is the ``--device`` value (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``);
    ``nproc_per_node`` is ``0`` when the user did not choose (one process per GPU, else one).
    """

    device: str = "auto"
    sync_bn: bool = False
    nproc_per_node: int = 0
    nnodes: int = 1
    node_rank: int = -1
    rdzv_endpoint: str = ""
    rdzv_timeout: int = 300
    """Seconds to wait for every node to join the rendezvous (``--rdzv-timeout``)."""


@runtime_checkable
class Strategy(Protocol):
    """A parallel strategy owns the process: it is the first object a run builds.

    It decides the device, knows its rank among ``world_size`` processes, reduces tensors across
    them, picks which sample indices this process trains on, wraps the model for training and
    unwraps it for checkpoints, and says whether this process writes files (``is_main``).
    Strategies that need several processes set ``distributed = True``; cnnkit then starts the
    workers through ``launch`` (torch.distributed's elastic launcher) unless it runs inside them.
    ``SingleProcessStrategy`` and ``DistributedStrategy`` (both in ``cnnkit.contracts``) are
    working bases to subclass.
    """

    name: str
    distributed: bool

    @property
    def device(self) -> torch.device: ...

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...

    @property
    def is_main(self) -> bool:
        """True in the one process that writes the run directory, checkpoints and progress."""

    def setup(self) -> None:
        """Join the process group (distributed strategies); called once, before anything else."""

    def barrier(self) -> None: ...

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes, in place, and return it."""

    def all_gather_object(self, obj: object) -> list[object]:
        """``obj`` from every process, in rank order (small, picklable values only)."""

    def shard(self, count: int, global_batch: int, order: torch.Tensor | None = None) -> list[torch.Tensor]:
        """This process's sample indices for each step of one pass over ``count`` samples.

        Step ``k`` covers global positions ``[k * global_batch, (k + 1) * global_batch)`` of
        ``order`` (or of ``range(count)`` when ``order`` is None); this process gets its share
        (``shard_steps`` in ``cnnkit.contracts`` computes it).
        """

    def wrap(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device and wrap it for training (DataParallel, DDP, ...)."""

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The plain module inside ``wrap``'s result, whose ``state_dict`` goes into checkpoints."""

    def launch(self, argv: list[str]) -> int:
        """Start the worker processes running ``python -m cnnkit *argv``; return the exit code."""

    def teardown(self) -> None:
        """Leave the process group; called once, also after a failure."""


class StrategyFactory(Protocol):
    """Builds the run's strategy, once per process, before anything else (a class taking the
    options is one)."""

    def __call__(self, options: StrategyOptions, /) -> Strategy: ...


class StrategyRegister(Protocol):
    """The ``register`` that ``register_strategies`` receives.

    ``distributed``: the strategy runs one process per worker, so cnnkit launches them (and
    refuses options that only apply to a distributed run when it is False).
    """

    def __call__(self, name: str, factory: StrategyFactory | str, *, help: str = "",
                 distributed: bool = False) -> None: ...
