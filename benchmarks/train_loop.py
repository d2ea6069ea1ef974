"""Training throughput: cnnkit's engine against the loop tutorials write by hand, same process.

The hand-written baseline is the usual notebook loop: a ``DataLoader`` over a ``TensorDataset``
of normalised float images, ``loss.item()`` and an accuracy count read back every step. cnnkit
keeps uint8 images on the device, normalises per batch and reads metrics once per epoch.
Both train mnist-cnn on the shipped digits with the same optimizer and batch size.
Run: ``python benchmarks/train_loop.py [--epochs N]``; prints seconds per epoch and the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnkit.contracts import StrategyOptions
from cnnkit.data.digits import load_digits
from cnnkit.data.splits import channel_stats
from cnnkit.engine.precision import Precision
from cnnkit.engine.progress import Progress
from cnnkit.engine.strategies import single
from cnnkit.engine.trainer import Trainer
from cnnkit.models.mnist_cnn import MnistCNN


def handwritten_loop(data, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = MnistCNN()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = data.train.images.float() / 255
    x = (x - x.mean()) / x.std()
    loader = DataLoader(TensorDataset(x, data.train.labels), batch_size=batch_size, shuffle=True)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running_loss, correct, seen = 0.0, 0, 0
        for images, labels in loader:
            optimizer.zero_grad()
            logits = model(images)
            loss = loss_fn(logits, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
    return (time.perf_counter() - started) / epochs


def cnnkit_engine(data, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = MnistCNN()
    mean, std = channel_stats(data.train, seed=0)
    strategy = single(StrategyOptions(device="cpu"))
    trainer = Trainer(
        model, torch.optim.AdamW(model.parameters(), lr=2e-3), nn.CrossEntropyLoss(),
        strategy=strategy, precision=Precision("fp32", strategy.device), mean=mean, std=std,
        batch_size=batch_size, progress=Progress(epochs, quiet=True), shuffle_seed=0, augment_seed=0,
    )
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        trainer.train_epoch(data.train, epoch)
    return (time.perf_counter() - started) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data = load_digits()
    cnnkit_engine(data, 1, args.batch_size)  # warm-up: first-call allocations and kernel selection
    baseline = handwritten_loop(data, args.epochs, args.batch_size)
    engine = cnnkit_engine(data, args.epochs, args.batch_size)
    print(f"hand-written loop  {baseline:.3f} s/epoch")
    print(f"cnnkit engine      {engine:.3f} s/epoch")
    print(f"speed-up           {baseline / engine:.2f}x (higher is better; 1.0 = same speed)")


if __name__ == "__main__":
    main()
