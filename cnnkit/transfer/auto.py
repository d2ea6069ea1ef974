"""``--freeze auto``: the four-quadrant rule of transfer learning (CS231n's "Transfer Learning"
notes; Yosinski et al. 2014), by the data's size and its similarity to the pretraining data:

==============  =============================  ==============================
                similar                        different
==============  =============================  ==============================
small           freeze the features            freeze only the early stages
large           fine-tune the top stages       train everything
==============  =============================  ==============================

Small is fewer than :data:`SMALL` training images. Similarity is what ``--similar`` or
``--different`` says, else a linear probe: a logistic regression on the frozen features of up to
1,000 training images, scored on up to 500 validation images; similar when it closes at least
:data:`SIMILAR_SCORE` of the gap between chance and perfect accuracy.
"""

from __future__ import annotations

import torch

from cnnkit.console import note
from cnnkit.transfer import surgery

SMALL = 5000
SIMILAR_SCORE = 0.6


def probe_score(model, head: str, data, device: torch.device, mean, std) -> float:
    """How well a linear classifier separates the classes on frozen features (0 chance, 1 perfect)."""
    from types import SimpleNamespace

    from cnnkit.engine.precision import Precision
    from cnnkit.transfer.features import extract

    scale = 1 / (255 * torch.tensor(std, device=device).view(1, -1, 1, 1))
    shift = -torch.tensor(mean, device=device).view(1, -1, 1, 1) / torch.tensor(std, device=device).view(1, -1, 1, 1)
    reader = SimpleNamespace(batch_size=32, device=device, workers=0, precision=Precision("fp32", device),
                             inputs=lambda images: torch.addcmul(shift, images.float(), scale))
    pick = lambda split, n: torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:n].sort().values  # noqa: E731
    train = extract(model, head, data.train, reader, pick(data.train, 1000))
    val = extract(model, head, data.val, reader, pick(data.val, 500))
    classes = len(data.classes)
    center, spread = train.images.mean(0), train.images.std(0).clamp_min(1e-6)
    x, xv = (train.images - center) / spread, (val.images - center) / spread
    torch.manual_seed(0)
    linear = torch.nn.Linear(x.shape[1], classes).to(device)
    optimizer = torch.optim.Adam(linear.parameters(), lr=0.01, weight_decay=1e-4)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(linear(x), train.labels).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (linear(xv).argmax(1) == val.labels).float().mean().item()
    chance = 1 / classes
    return max(0.0, (accuracy - chance) / (1 - chance))


def decide(transfer, data, config) -> str:
    """The ``--freeze`` value the rule picks, with a note saying why."""
    blocks = len(surgery.stages(transfer.model, transfer.heads))
    size = len(data.train)
    small = size < SMALL
    if config.similar is not None:
        similar, because = config.similar, "--similar" if config.similar else "--different"
    else:
        score = probe_score(transfer.model, transfer.head, data, torch.device("cpu"),  # the model is not on the device yet
                            transfer.preprocessing.mean or (0.5,) * 3, transfer.preprocessing.std or (0.25,) * 3)
        similar = score >= SIMILAR_SCORE
        because = f"a linear probe on the frozen features scores {score:.2f} (similar from {SIMILAR_SCORE})"
    if small and similar:
        freeze, action = "features", "train only the new head"
    elif small:
        freeze, action = str(max(1, blocks // 3)), f"freeze the first {max(1, blocks // 3)} of {blocks} stages"
    elif similar:
        freeze, action = str(max(1, 2 * blocks // 3)), f"fine-tune the top stages (freeze {max(1, 2 * blocks // 3)} of {blocks})"
    else:
        freeze, action = "none", "train everything"
    note(f"--freeze auto: {size} training images is {'small' if small else 'large'} (under {SMALL} is small) and the data "
         f"looks {'similar' if similar else 'different'} ({because}): {action} (--freeze {freeze}).")
    return freeze
