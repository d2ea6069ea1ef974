"""What a training run is made of: the parts :func:`cnnkit.recipe.build.build_parts` builds (one
frozen object, never changed once built), and the state that changes as the run trains.

Run state (:mod:`cnnkit.recipe.state`), the fit driver (:mod:`cnnkit.recipe.fit`) and plugin
sessions (:mod:`cnnkit.recipe.session`) take these two objects, never each other's insides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.engine.early_stopping import EarlyStopping
from cnnkit.options import TrainConfig
from cnnkit.recipe.rundir import RunDir

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnnkit.contracts._strategies import Strategy
    from cnnkit.data.splits import DataSplits
    from cnnkit.engine.precision import Precision
    from cnnkit.engine.progress import Progress
    from cnnkit.engine.trainer import Trainer
    from cnnkit.transfer.setup import Transfer


@dataclass(frozen=True)
class RunParts:
    """A run's parts, built once: the data (or their cached features), the model (wrapped by the
    strategy), the trainer that runs it (its optimizer, schedule and generators), and the choices
    the run resolved."""

    config: TrainConfig
    strategy: Strategy
    data: DataSplits
    model: nn.Module
    """The whole network, wrapped by the strategy (checkpoints save its weights)."""
    trainer: Trainer
    """Runs the network (compiled, or only its tail on cached features) on ``data``."""
    transfer: Transfer | None
    precision: Precision
    channels_last: bool
    deterministic: bool
    progress: Progress
    input_size: tuple[int, int, int]
    """(channels, height, width) the model takes."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eval_crop: float
    """The centre share of each picture evaluation reads (see :func:`cnnkit.recipe.data_setup.eval_crop`)."""
    interpolation: str
    model_name: str
    model_kwargs: dict[str, Any]
    """What rebuilds the model by name (checkpoints record them)."""
    workers: int

    @property
    def resolved(self) -> dict[str, object]:
        """The choices ``auto`` options resolved to, recorded in config.json and checkpoints."""
        strategy = self.strategy
        resolved: dict[str, object] = {
            "strategy": strategy.name,
            "device": str(strategy.device),
            "precision": self.precision.name,
            "channels_last": self.channels_last,
            "deterministic": self.deterministic,
        }
        if strategy.distributed:  # what the launcher (cnnkit's or torchrun) really started
            per_node = int(os.environ.get("LOCAL_WORLD_SIZE", strategy.world_size))
            resolved.update(nproc_per_node=per_node, nnodes=max(1, strategy.world_size // per_node))
        return resolved

    def record(self, run_name: str) -> dict[str, Any]:
        """The options as ``config.json`` and checkpoints record them: as given, with the ``auto``
        choices resolved, the run's name, and no ``resume`` (a resumed run continues as the
        uninterrupted run would have been recorded)."""
        return {**self.config.to_dict(), **self.resolved, "name": run_name, "resume": ""}

    @property
    def preprocessing(self) -> dict[str, object]:
        """How evaluation reads images, as checkpoints record it."""
        return {"crop_fraction": self.eval_crop, "interpolation": self.interpolation}


class FitState:
    """What changes as a run trains: the metrics history, early stopping's progress, the best
    weights so far, the epoch ``last.pt`` holds, and the run directory (known from the start for a
    resumed run, made once the parts are built for a new one)."""

    def __init__(self, config: TrainConfig):
        self.history: list[dict[str, float]] = []
        self.stopper = EarlyStopping(config.patience)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.saved_epoch = 0
        self.run_dir: RunDir | None = RunDir(Path(config.resume)) if config.resume else None

    @property
    def directory(self) -> RunDir:
        """The run directory, once there is one."""
        if self.run_dir is None:
            raise RuntimeError("the run directory is not open yet")
        return self.run_dir
