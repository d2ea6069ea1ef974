"""One of two gloo workers (``python two_workers.py RANK PORT OUT``) that train the same model
three ways on the same batches: plain ``ddp``, ``ddp-powersgd`` starting after the last step,
and ``ddp-powersgd`` compressing from step 2 with rank 1. Rank 0 writes what it saw to OUT."""

from __future__ import annotations

import copy
import json
import os
import sys

import torch
from cnnkit_powersgd.strategy import PowerSGDStrategy
from torch import nn

from cnnkit.contracts import DistributedStrategy, StrategyOptions

STEPS = 6


def train(strategy: DistributedStrategy, model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    wrapped = strategy.wrap(model)
    optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.1)
    for images, labels in batches:
        optimizer.zero_grad()
        nn.functional.cross_entropy(wrapped(images), labels).backward()
        optimizer.step()
    return wrapped


def powersgd(options: StrategyOptions, rank: int, start: int) -> PowerSGDStrategy:
    os.environ.update(CNNKIT_POWERSGD_RANK=str(rank), CNNKIT_POWERSGD_START=str(start))
    return PowerSGDStrategy(options)


def main(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    options = StrategyOptions(device="cpu")
    plain = DistributedStrategy(options)
    plain.setup()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 4))
    generator = torch.Generator().manual_seed(100 + rank)  # each rank its own data, as in a real run
    batches = [(torch.randn(8, 1, 8, 8, generator=generator), torch.randint(0, 4, (8,), generator=generator)) for _ in range(STEPS)]
    late, early = powersgd(options, 4, STEPS + 10), powersgd(options, 1, 2)
    runs = {name: train(strategy, copy.deepcopy(model), batches)
            for name, strategy in (("plain", plain), ("late", late), ("early", early))}
    weights = {name: torch.cat([p.detach().flatten() for p in run.parameters()]) for name, run in runs.items()}
    hidden = dict(runs["early"].named_parameters())["module.3.weight"].grad
    report = {
        "late_minus_plain": (weights["late"] - weights["plain"]).abs().max().item(),
        "early_minus_plain": (weights["early"] - weights["plain"]).abs().max().item(),
        "steps_counted": [late.state.iter if late.state else -1, early.state.iter if early.state else -1],
        "compression_rate": early.state.compression_stats()[0] if early.state else 0.0,
        "early_gradient_rank": int(torch.linalg.matrix_rank(hidden)) if hidden is not None else -1,
        "plain_gradient_rank": int(torch.linalg.matrix_rank(dict(runs["plain"].named_parameters())["module.3.weight"].grad)),
    }
    if rank == 0:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(report, f)
    plain.teardown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
