"""Streaming throughput: cnnkit's streamed folder path against torchvision's ``ImageFolder`` +
``DataLoader`` with the same transforms (shorter side resized, centre crop, uint8 tensor), same
images, same run. Prints images/s of each and their ratio, for several worker counts, plus the
one-off cost of probing every file before training and of reading the folder into memory.

    python benchmarks/data_loading.py [--images 800] [--size 224] [--workers 0,1,2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnkit.contracts import DataRequest
from cnnkit.data.folder import load_folder


def make_photos(root: Path, count: int, classes: int = 10) -> None:
    """JPEG 'photos' of 640x480 and 480x640 (smooth gradients plus noise, as camera images
    compress), spread over ``classes`` folders."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    for i in range(count):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        base = (np.sin(x / rng.uniform(20, 80)) + np.cos(y / rng.uniform(20, 80))) * 60 + 128
        pixels = np.clip(base[..., None] + rng.normal(0, 12, (480, 640, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels)
        (img if i % 3 else img.transpose(Image.Transpose.ROTATE_90)).save(folder / f"{i:05d}.jpg", quality=90)


def torchvision_rate(root: Path, size: int, batch: int, workers: int) -> float:
    from torchvision import datasets
    from torchvision.transforms import v2

    transform = v2.Compose([v2.Resize(size), v2.CenterCrop(size), v2.PILToTensor()])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(root, transform=transform), batch_size=batch, num_workers=workers)
    started, seen = time.perf_counter(), 0
    for images, _ in loader:
        seen += len(images)
    return seen / (time.perf_counter() - started)


def cnnkit_rate(root: Path, size: int, batch: int, workers: int) -> float:
    data = load_folder(root, DataRequest(image_size=(size, size), channels=3, val_split=0.0001, seed=0))
    split = data.train
    started, seen = time.perf_counter(), 0
    for images, _ in split.batches(torch.arange(len(split)).split(batch), torch.device("cpu"), workers):
        seen += len(images)
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="0,1,2")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as folder:
        root = Path(folder)
        make_photos(root, args.images)
        started = time.perf_counter()
        data = load_folder(root, DataRequest(image_size=(args.size, args.size), channels=3, val_split=0.0001, seed=0))
        probe = time.perf_counter() - started
        started = time.perf_counter()
        data.train.materialize()
        in_memory = time.perf_counter() - started
        print(f"{args.images} JPEGs of 640x480 -> {args.size}x{args.size} RGB, batch {args.batch_size}")
        print(f"probing every file before training: {probe:.2f} s ({1e3 * probe / args.images:.2f} ms per file)")
        print(f"reading them into memory (workers 0): {in_memory:.2f} s")
        for workers in (int(w) for w in args.workers.split(",")):
            cnnkit_rate(root, args.size, args.batch_size, workers)  # warm the page cache for both
            baseline = torchvision_rate(root, args.size, args.batch_size, workers)
            ours = cnnkit_rate(root, args.size, args.batch_size, workers)
            print(f"workers {workers}: torchvision ImageFolder {baseline:7.1f} img/s, cnnkit streaming {ours:7.1f} img/s, "
                  f"ratio {ours / baseline:.2f}")


if __name__ == "__main__":
    main()
