"""Class activation maps: where the network looked for the class it predicted.

HiResCAM (Draelos & Carin 2020), the Grad-CAM variant (Selvaraju et al. 2017) that multiplies the
last convolution's activations by the gradient of the class score element by element instead of
by its per-channel mean: the same map as Grad-CAM for networks that pool globally before their
classifier (ResNets, MobileNets), and a faithful one for networks that flatten (mnist-cnn,
AlexNet), where Grad-CAM's averaged weights cancel out and often leave nothing. Summed over
channels, rectified, scaled up to the image. Written here (forward hook, ``autograd.grad``)
rather than taken from a package, so it works on every model cnnkit builds without another
dependency."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.engine.checkpoint import atomic_write
from cnnkit.errors import CnnkitError


def last_convolution(model: nn.Module) -> nn.Module:
    convolutions = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convolutions:
        raise CnnkitError("This model has no convolution, so Grad-CAM has nothing to show; --cam applies to CNNs.")
    return convolutions[-1]


def class_activation(model: nn.Module, inputs: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Heat maps ``(N, H, W)`` in 0..1 for ``classes`` of ``inputs`` (normalised images)."""
    layer = last_convolution(model)
    seen: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda module, args, output: seen.__setitem__("maps", output))
    try:
        with torch.enable_grad():
            scores = model(inputs.requires_grad_(True))
            maps = seen["maps"]
            chosen = scores.gather(1, classes[:, None]).sum()
            grads = torch.autograd.grad(chosen, maps)[0]
    finally:
        handle.remove()
    cam = F.relu((grads * maps).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    top = cam.flatten(1).max(1).values.clamp_min(1e-12)
    return (cam / top[:, None, None]).detach()


def overlay_png(image: torch.Tensor, cam: torch.Tensor, title: str) -> bytes:
    """The image beside the image with its heat map laid over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picture = image.permute(1, 2, 0).numpy().astype(np.float32) / 255
    if picture.shape[2] == 1:
        picture = np.repeat(picture, 3, axis=2)
    heat = plt.get_cmap("jet")(cam.numpy())[..., :3]
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3.2))
    left.imshow(picture.clip(0, 1))
    right.imshow((0.55 * picture + 0.45 * heat).clip(0, 1))
    for ax in (left, right):
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def write_cams(trained, items: list[tuple[str, torch.Tensor, int, float]], folder: Path, taken: set[Path]) -> list[Path]:
    """One overlay PNG per (file, uint8 image, predicted class, probability); names already
    ``taken`` (same-named images from different folders) get a number."""
    folder.mkdir(parents=True, exist_ok=True)
    images = torch.stack([image for _, image, _, _ in items])
    maps = class_activation(trained.model, trained.normalise(images), torch.tensor([c for _, _, c, _ in items]))
    written = []
    for (file, image, predicted, probability), cam in zip(items, maps):
        target = folder / f"{Path(file).stem}.cam.png"
        count = 1
        while target in taken:
            count += 1
            target = folder / f"{Path(file).stem}-{count}.cam.png"
        taken.add(target)
        atomic_write(target, overlay_png(image, cam, f"{Path(file).name}: {trained.classes[predicted]} ({100 * probability:.1f}%)"))
        written.append(target)
    return written
