"""Precision and memory layout: training throughput of a CIFAR-style ResNet at 32x32, same process.

The model is torchvision's ResNet-18 with the usual CIFAR stem (3x3 stride-1 first convolution,
no max-pool). Each setting trains the same synthetic batches through cnnkit's ``Trainer``:
fp32, fp32 + channels-last, bf16, bf16 + channels-last, and what ``--precision auto`` with the
default ``--channels-last`` picks on this machine. Settings take turns, one step each, so drift
in the machine's speed is shared. Target: ``auto`` at least 2x fp32 on the 2-core development CPU.

Run: ``python benchmarks/precision.py [--steps N] [--batch-size B] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from cnnkit.contracts import StrategyOptions
from cnnkit.data.splits import Split
from cnnkit.engine.precision import Precision, resolve_channels_last, resolve_precision
from cnnkit.engine.progress import Progress
from cnnkit.engine.strategies import single
from cnnkit.engine.trainer import Trainer


def cifar_resnet18() -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def make_trainer(precision: str, channels_last: bool, batch: Split, device: torch.device) -> Trainer:
    torch.manual_seed(0)
    model = cifar_resnet18().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    strategy = single(StrategyOptions(device=str(device)))
    return Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), nn.CrossEntropyLoss(),
        strategy=strategy, precision=Precision(precision, device), mean=[0.5] * 3, std=[0.25] * 3,
        batch_size=len(batch), progress=Progress(1, quiet=True), shuffle_seed=0, augment_seed=0,
        channels_last=channels_last,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per setting (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=128, help="the usual CIFAR batch")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch_size, 3, 32, 32), dtype=torch.uint8, generator=generator)
    batch = Split(images, torch.randint(0, 10, (args.batch_size,), generator=generator)).to(device)

    auto = resolve_precision("auto", device)
    auto_cl = resolve_channels_last(None, auto, device)
    settings = {
        "fp32": ("fp32", False),
        "fp32 + channels-last": ("fp32", True),
        "bf16": ("bf16", False),
        "bf16 + channels-last": ("bf16", True),
        f"auto ({auto}{' + channels-last' if auto_cl else ''})": (auto, auto_cl),
    }
    trainers = {name: make_trainer(*setting, batch, device) for name, setting in settings.items()}
    times: dict[str, list[float]] = {name: [] for name in settings}
    for step in range(args.steps + 1):
        for name, trainer in trainers.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            trainer.train_epoch(batch, step)  # one batch: one optimizer step
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step > 0:
                times[name].append(time.perf_counter() - started)

    base = statistics.median(times["fp32"])
    print(f"CIFAR-style ResNet-18, 32x32, batch {args.batch_size}, {device}, median of {args.steps} steps")
    print(f"{'setting':<30} {'s/step':>8} {'img/s':>8} {'x fp32':>7}")
    for name in settings:
        seconds = statistics.median(times[name])
        print(f"{name:<30} {seconds:8.3f} {args.batch_size / seconds:8.1f} {base / seconds:7.2f}")
    auto_name = list(settings)[-1]
    speedup = base / statistics.median(times[auto_name])
    print(f"auto is {speedup:.2f}x fp32 ({'meets' if speedup >= 2 else 'misses'} the 2x target)")


if __name__ == "__main__":
    main()
