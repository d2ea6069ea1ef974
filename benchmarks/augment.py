"""Augmentation throughput: the tutorial pipeline against cnnkit's path for the same spec, and
every preset, images/s in one run; then what the ``cifar`` preset costs a training epoch.

Baseline: per-sample PIL, as tutorials write it, in a DataLoader: RandomCrop(32, padding=4) +
RandomHorizontalFlip + ColorJitter(0.2, 0.2) + ToTensor + Normalize. cnnkit: the same spec,
``random-crop(padding=4), hflip, color-jitter(0.2, 0.2, 0)``, on uint8 CIFAR-sized tensors in
memory (batched on the device). Targets on the 2-core CPU: ratio >= 10x, and an epoch of a CIFAR
ResNet-20 with ``--augment cifar`` no more than 5% slower than without.

    python benchmarks/augment.py [--images 4096] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from cnnkit.augment.pipeline import BatchAugment, SampleAugment, resolve
from cnnkit.builtins.augmentations import PRESETS
from cnnkit.plugins import registry

SPEC = "random-crop(padding=4), hflip, color-jitter(0.2, 0.2, 0)"


def tutorial_rate(images: torch.Tensor, batch: int) -> float:
    import torchvision.transforms as T
    from PIL import Image

    pictures = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ColorJitter(0.2, 0.2),
                           T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])

    class Pictures(torch.utils.data.Dataset):
        def __len__(self):
            return len(pictures)

        def __getitem__(self, i):
            return transform(pictures[i]), 0

    started = time.perf_counter()
    for _ in torch.utils.data.DataLoader(Pictures(), batch_size=batch, num_workers=0):
        pass
    return len(images) / (time.perf_counter() - started)


def cnnkit_rate(spec: str, images: torch.Tensor, batch: int, device: torch.device) -> tuple[float, str]:
    resolved = resolve(spec, registry("augmentations"), (32, 32))
    images = images.to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    labels = torch.zeros(len(images), dtype=torch.long, device=device)
    if resolved.batchable:
        augment = BatchAugment(resolved.sample, resolved.mixers, 1.0)
        path = "batched"
    else:
        sample = SampleAugment(resolved.sample, (32, 32))
        mixing = BatchAugment([], resolved.mixers, 1.0)
        path = "per-sample"
    started = time.perf_counter()
    for first in range(0, len(images), batch):
        chunk = images[first:first + batch]
        if path == "batched":
            out, _ = augment(chunk.float().div(255), labels[first:first + batch], generator)
        else:
            out = torch.stack([sample(img, first + i) for i, img in enumerate(chunk)]).float().div(255)
            out, _ = mixing(out, labels[first:first + batch], generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - started), path


def epoch_cost(device: torch.device, images: int) -> tuple[float, float]:
    """Seconds per epoch of resnet20 on random CIFAR-sized data, without and with ``cifar``."""
    from cnnkit.contracts import StrategyOptions
    from cnnkit.data.splits import Split
    from cnnkit.engine.precision import Precision
    from cnnkit.engine.progress import Progress
    from cnnkit.engine.strategies import single
    from cnnkit.engine.trainer import Trainer
    from cnnkit.models.resnet import CifarResNet

    data = Split(torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (images,))).to(device)
    times = {}
    for spec in ("", "cifar", "", "cifar"):
        torch.manual_seed(0)
        model = CifarResNet(20).to(device)
        resolved = resolve(spec, registry("augmentations"), (32, 32)) if spec else None
        trainer = Trainer(
            model, torch.optim.SGD(model.parameters(), lr=0.05), torch.nn.CrossEntropyLoss(),
            strategy=single(StrategyOptions(device=str(device))), precision=Precision("fp32", device),
            mean=[0.5] * 3, std=[0.25] * 3, batch_size=128, progress=Progress(1, quiet=True), shuffle_seed=0,
            augment_seed=0, num_classes=10, batch_augment=BatchAugment(resolved.sample, [], 1.0) if resolved else None,
        )
        started = time.perf_counter()
        trainer.train_epoch(data, 1)
        times.setdefault(spec, []).append(time.perf_counter() - started)
    return min(times[""]), min(times["cifar"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epoch-images", type=int, default=2048)
    args = parser.parse_args()
    device = torch.device(args.device)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    baseline = tutorial_rate(images[: min(len(images), 2048)], args.batch_size)
    print(f"{args.images} CIFAR-sized images, batch {args.batch_size}, {device}")
    print(f"tutorial per-sample PIL in a DataLoader        {baseline:9.0f} img/s")
    ours, path = cnnkit_rate(SPEC, images, args.batch_size, device)
    print(f"cnnkit '{SPEC}' ({path})  {ours:9.0f} img/s  ratio {ours / baseline:6.1f}x (target >= 10x)")
    for preset in sorted(PRESETS):
        rate, path = cnnkit_rate(preset, images[:1024], args.batch_size, device)
        print(f"  preset {preset:22s} {path:10s} {rate:9.0f} img/s  ratio {rate / baseline:6.1f}x")
    plain, augmented = epoch_cost(device, args.epoch_images)
    print(f"resnet20 epoch ({args.epoch_images} images): {plain:.2f} s plain, {augmented:.2f} s with cifar, "
          f"{100 * (augmented / plain - 1):+.1f}% (target <= +5%)")


if __name__ == "__main__":
    main()
