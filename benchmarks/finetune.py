"""Feature extraction: ``cnnkit finetune --freeze features`` (the frozen backbone's features computed
once, then the head trains on them) against naive training with frozen parameters (the full
forward pass every epoch), same data, same run. Prints the epoch-time ratio over the run.

    python benchmarks/finetune.py [--epochs 10] [--images 200] [--size 64]

Uses torchvision's resnet18 with random weights given as ``--weights FILE`` (the timing does not
depend on the values). Counts the epochs' seconds (and
the one-off extraction), not start-up and checkpoint writing, which both pay alike. Target on the
2-core CPU: >= 5x.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_folder(root: Path, images: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / ("ants" if i % 2 else "bees")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


EXTRACTION: list[float] = []


def run(data: Path, out: Path, name: str, epochs: int, size: int, weights: Path) -> float:
    """Seconds of training: the epochs, plus the one-off feature extraction where there is one."""
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.run import train

    config = TrainConfig(backbone="resnet18", weights=str(weights), freeze="features", data=str(data), epochs=epochs, image_size=str(size),
                         optimizer="sgd", lr=1e-3, scheduler="step", step_size=7, patience=0, out=str(out), name=name,
                         quiet=True, precision="fp32")
    EXTRACTION.clear()
    result = train(config, bars=False)
    return sum(row["seconds"] for row in result.history) + sum(EXTRACTION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=112)
    args = parser.parse_args()
    from torchvision.models import resnet18

    import cnnkit.recipe.features as features

    extract = features.extract

    def timed_extract(*args, **kwargs):
        started = time.perf_counter()
        try:
            return extract(*args, **kwargs)
        finally:
            EXTRACTION.append(time.perf_counter() - started)

    features.extract = timed_extract

    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as folder:
        root = Path(folder)
        weights = root / "resnet18.pth"  # random weights: torchvision's file name would promise its hash
        torch.save(resnet18().state_dict(), weights)
        make_folder(root / "data", args.images, args.size)
        cached = run(root / "data", root / "runs", "cached", args.epochs, args.size, weights)
        real = features.can_cache
        features.can_cache = lambda *args: "switched off by the benchmark"
        try:
            naive = run(root / "data", root / "runs", "naive", args.epochs, args.size, weights)
        finally:
            features.can_cache = real
    print(f"resnet18, {args.images} images at {args.size}x{args.size}, {args.epochs} epochs, --freeze features, fp32")
    print(f"naive (frozen parameters, full forward every epoch)   {naive:6.2f} s of epochs")
    print(f"cnnkit (features computed once, then the head trains)  {cached:6.2f} s of epochs and extraction")
    print(f"ratio {naive / cached:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
