"""``cnnkit augment preview``: a grid of an image and augmented variants of it, as PNG."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
import torch

from cnnkit.augment.pipeline import Resolved, SampleAugment
from cnnkit.engine.checkpoint import atomic_write
from cnnkit.engine.seeding import derive_seed

CELL = 160
CAPTION = 40


def sample_images(image: str, data: str, size: tuple[int, int], seed: int) -> tuple[list[torch.Tensor], str]:
    """Two uint8 images to augment (the second is the partner for mixup and cutmix), and a title."""
    from cnnkit.contracts._data import DataRequest

    if image:
        from cnnkit.data.images import UnreadableImage, decode
        from cnnkit.errors import UsageError

        try:
            picture = torch.from_numpy(decode(Path(image), None, 3))
        except (UnreadableImage, OSError) as exc:
            raise UsageError(f"Cannot read --image '{image}': {exc}") from None
        return [picture, picture.flip(-1)], Path(image).name
    from cnnkit.data.resolve import resolve_data

    entry = resolve_data(data)
    splits = entry.create(DataRequest(image_size=size, channels=3, val_split=0.2, seed=seed))
    train = splits.train
    labels = train.labels
    first = 0
    second = int(torch.nonzero(labels != labels[first])[0]) if (labels != labels[first]).any() else min(1, len(labels) - 1)
    picked = [train.subset(torch.tensor([i])) for i in (first, second)]
    images = [p.images[0] if hasattr(p, "images") else p.materialize().images[0] for p in picked]
    return images, f"{data}: {splits.classes[int(labels[first])]} and {splits.classes[int(labels[second])]}"


def variants(resolved: Resolved, images: list[torch.Tensor], size: tuple[int, int], count: int,
             seed: int) -> list[tuple[torch.Tensor, str]]:
    """The original and ``count - 1`` augmented variants, each with its caption."""
    from torchvision.transforms.v2 import functional as TF

    sample = SampleAugment(resolved.sample, size)
    fitted = [TF.center_crop(TF.resize(img, min(size), antialias=True), list(size)) for img in images]
    if not resolved.needs_originals:  # as in training: the operations see images at the model's size
        images = fitted
    cells = [(fitted[0], "original")]
    mixers = [(step.entry.name, step.create()) for step in resolved.mixers]
    for i in range(1, count):
        drawn = [sample(img, derive_seed(seed, "preview", i, k)) for k, img in enumerate(images)]
        caption = ", ".join(step.entry.name for step in resolved.sample) or "no per-image operation"
        if mixers:
            name, mixer = mixers[(i - 1) % len(mixers)]
            generator = torch.Generator().manual_seed(derive_seed(seed, "preview-mix", i))
            batch = torch.stack(drawn).float() / 255
            targets = torch.eye(2)
            mixed, weights = mixer(batch, targets, generator)
            drawn = [(mixed[0] * 255).round().clamp(0, 255).to(torch.uint8)]
            caption = f"{name}: {weights[0, 0]:.2f} A + {weights[0, 1]:.2f} B"
        cells.append((drawn[0], caption))
    return cells


def render(cells: list[tuple[torch.Tensor, str]], columns: int, title: str, out: Path) -> None:
    from PIL import Image, ImageDraw

    rows = (len(cells) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * CELL, rows * (CELL + CAPTION) + CAPTION), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 6), title, fill="black")
    for i, (image, caption) in enumerate(cells):
        array = image.cpu().numpy()
        array = np.repeat(array, 3, axis=0) if array.shape[0] == 1 else array
        picture = Image.fromarray(array.transpose(1, 2, 0)).resize((CELL - 8, CELL - 8), Image.Resampling.NEAREST)
        x, y = (i % columns) * CELL, CAPTION + (i // columns) * (CELL + CAPTION)
        sheet.paste(picture, (x + 4, y + 4))
        draw.text((x + 4, y + CELL - 2), "\n".join(textwrap.wrap(caption, 26)[:3]), fill="black")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write(out, buffer.getvalue())
