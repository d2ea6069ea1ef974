"""Engine overhead: cnnkit's training loop against a minimal hand-written loop, same process.

Both train mnist-cnn on the shipped digits with the same initial weights, data order, batch size,
optimizer and fp32 arithmetic; the hand-written loop keeps the data on the device as cnnkit does
and reads its metrics once per epoch, so the difference is the engine's own cost (sharding,
metrics, scheduler and progress hooks). Epochs alternate between the two to share any drift.

Run: ``python benchmarks/loop_overhead.py [--epochs N] [--batch-size B] [--device cuda]``.
Prints seconds per epoch, the ratio (target <= 1.03) and the final losses (equal to 1e-5).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from cnnkit.contracts import StrategyOptions
from cnnkit.data.digits import load_digits
from cnnkit.data.splits import channel_stats
from cnnkit.engine.precision import Precision
from cnnkit.engine.progress import Progress
from cnnkit.engine.strategies import single
from cnnkit.engine.trainer import Trainer
from cnnkit.models.mnist_cnn import MnistCNN

LR = 2e-3


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class HandWritten:
    """The loop a careful tutorial writes: tensors on the device, metrics read once per epoch."""

    def __init__(self, model, data, mean, std, batch_size, seed):
        self.model, self.data, self.batch_size = model, data, batch_size
        device = data.images.device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
        self.loss_fn = nn.CrossEntropyLoss()
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self) -> float:
        self.model.train()
        images, labels = self.data.images, self.data.labels
        order = torch.randperm(len(labels), generator=self.generator).to(images.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
        for start in range(0, len(labels), self.batch_size):
            index = order[start:start + self.batch_size]
            x = (images[index].float() - self.mean) / self.std
            loss = self.loss_fn(self.model(x), labels[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach() * len(index)
        return loss_sum.item() / len(labels)


class Engine:
    def __init__(self, model, data, mean, std, batch_size, seed):
        strategy = single(StrategyOptions(device=str(data.images.device)))
        self.data = data
        self.trainer = Trainer(
            model, torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0), nn.CrossEntropyLoss(),
            strategy=strategy, precision=Precision("fp32", strategy.device), mean=mean, std=std,
            batch_size=batch_size, progress=Progress(1, quiet=True), shuffle_seed=seed, augment_seed=seed,
        )
        self.count = 0

    def epoch(self) -> float:
        self.count += 1
        return self.trainer.train_epoch(self.data, self.count)["loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    digits = load_digits()
    mean, std = channel_stats(digits.train, seed=0)
    train = digits.train.to(device)

    torch.manual_seed(0)
    initial = MnistCNN().state_dict()
    loops = {}
    for name, kind in (("hand-written loop", HandWritten), ("cnnkit engine", Engine)):
        model = MnistCNN().to(device)
        model.load_state_dict(initial)
        loops[name] = kind(model, train, mean, std, args.batch_size, seed=1)

    times = {name: [] for name in loops}
    losses = {}
    for epoch in range(args.epochs + 1):
        for name, loop in loops.items():
            synchronize(device)
            started = time.perf_counter()
            losses[name] = loop.epoch()
            synchronize(device)
            if epoch > 0:  # the first epoch warms up allocators and kernel choices
                times[name].append(time.perf_counter() - started)

    base, engine = (statistics.median(times[name]) for name in loops)
    print(f"device {device}, batch {args.batch_size}, {args.epochs} timed epochs each (median)")
    for name in loops:
        print(f"{name:<18} {statistics.median(times[name]):.4f} s/epoch   final train loss {losses[name]:.7f}")
    print(f"epoch-time ratio   {engine / base:.3f} (engine / hand-written; target <= 1.03)")
    difference = abs(losses["cnnkit engine"] - losses["hand-written loop"])
    print(f"loss difference    {difference:.2e} ({'equal' if difference <= 1e-5 else 'DIFFERENT'} to 1e-5)")


if __name__ == "__main__":
    main()
