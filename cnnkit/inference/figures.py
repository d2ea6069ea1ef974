"""The pictures ``cnnkit evaluate`` writes: a labelled confusion matrix and the images the model
got most confidently wrong."""

from __future__ import annotations

import io

import torch


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def confusion_figure(confusion: torch.Tensor, names: list[str], normalize: bool) -> bytes:
    plt = _pyplot()
    values = confusion.float()
    if normalize:
        values = values / values.sum(1, keepdim=True).clamp_min(1)
    k = len(names)
    side = min(2 + 0.5 * k, 24)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(values.numpy(), cmap="Blues")
    ax.set_xticks(range(k), names, rotation=90 if k > 6 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        top = values.max().item() or 1
        for i in range(k):
            for j in range(k):
                text = f"{values[i, j]:.2f}" if normalize else str(int(values[i, j]))
                ax.text(j, i, text, ha="center", va="center", color="white" if values[i, j] > top / 2 else "black", fontsize=8)
    ax.set_title("confusion matrix" + (" (fraction of each true class)" if normalize else ""))
    return _png(fig)


def top_losses_figure(probs: torch.Tensor, labels: torch.Tensor, images: torch.Tensor, names: list[str], count: int = 16) -> bytes:
    """The wrong predictions made with the highest confidence, each titled true / predicted (p)."""
    plt = _pyplot()
    confidence, predicted = probs.max(1)
    wrong = torch.nonzero(predicted != labels).flatten()
    order = wrong[confidence[wrong].argsort(descending=True)][:count]
    columns = 4
    rows = max(1, (len(order) + columns - 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if len(order) == 0:
        axes[0, 0].text(0, 0.5, "no wrong predictions", fontsize=12)
    for ax, i in zip(axes.flat, order.tolist()):
        picture = images[i].permute(1, 2, 0).numpy()
        ax.imshow(picture[..., 0] if picture.shape[2] == 1 else picture, cmap="gray" if picture.shape[2] == 1 else None)
        ax.set_title(f"{names[labels[i]]} / {names[predicted[i]]} ({confidence[i]:.2f})", fontsize=8)
    fig.suptitle("most confidently wrong: true / predicted (probability)")
    return _png(fig)
