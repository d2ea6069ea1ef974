"""``--freeze auto``: the four-quadrant rule of transfer learning, as CS231n's "Transfer Learning"
notes state it (after Yosinski et al. 2014), by the data's size and its similarity to the
pretraining data:

==============  ==========================================  ==============================
                similar                                     different
==============  ==========================================  ==============================
small           a linear classifier on the top features     a linear classifier on
                (``--freeze features``)                     activations from earlier in the
                                                            network (the output of stage
                                                            ``round(2n/3)`` of ``n``, averaged;
                                                            the later stages removed)
large           fine-tune the whole network, the backbone   train everything
                at a lower rate (``--freeze none
                --backbone-lr-mult 0.1``)                   (``--freeze none``)
==============  ==========================================  ==============================

Small is fewer than :data:`SMALL` training images. Similarity is what ``--similar`` or
``--different`` says, else a linear probe: a logistic regression on the frozen features of up to
1,000 training images, scored on up to 500 validation images; similar when it closes at least
:data:`SIMILAR_SCORE` of the gap between chance and perfect accuracy. Where a backbone cannot be
cut at an earlier stage (see :func:`cnnkit.transfer.surgery.earlier_cut`), small + different
falls back to the top features, and the note says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnkit.console import note
from cnnkit.transfer import surgery

SMALL = 5000
SIMILAR_SCORE = 0.6
LOWER_RATE = 0.1
"""The backbone's rate (times the head's) when large + similar data fine-tunes the whole network."""


@dataclass
class Decision:
    """What ``--freeze auto`` chose: a ``--freeze`` value, a backbone rate factor (None: the
    usual default) and, for small + different data, where to cut the backbone."""

    freeze: str
    backbone_lr_mult: float | None = None
    truncate: dict | None = None


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
    with torch.random.fork_rng(devices=[]):  # the run's own random stream is not touched
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


def decide(transfer, data, config, size) -> Decision:
    """The quadrant's decision, with a note naming the quadrant and what trains."""
    count = len(data.train)
    small = count < SMALL
    if config.similar is not None:
        similar, because = config.similar, "--similar" if config.similar else "--different"
    else:
        score = probe_score(transfer.model, transfer.head, data, torch.device("cpu"),  # the model is not on the device yet
                            transfer.preprocessing.mean or (0.5,) * 3, transfer.preprocessing.std or (0.25,) * 3)
        similar = score >= SIMILAR_SCORE
        because = f"a linear probe on the frozen features scores {score:.2f} (similar from {SIMILAR_SCORE})"
    decision, action = _quadrant(transfer, small, similar, config, size)
    note(f"--freeze auto: {count} training images is {'small' if small else 'large'} (under {SMALL} is small) and the data "
         f"looks {'similar' if similar else 'different'} ({because}); quadrant {'small' if small else 'large'} + "
         f"{'similar' if similar else 'different'}: {action}.")
    return decision


def _quadrant(transfer, small: bool, similar: bool, config, size) -> tuple[Decision, str]:
    top = "a linear classifier on the top features: only the new head trains (--freeze features)"
    if small and similar:
        return Decision("features"), top
    if small:
        spec, where = surgery.earlier_cut(transfer.model, transfer.heads, size)
        if spec is None:
            return Decision("features"), f"a linear classifier on earlier activations is not possible here ({where}), so {top}"
        earlier = f"a linear classifier on activations from earlier in the network: {where}; only the new head trains"
        return Decision("features", truncate=spec), earlier
    if similar:
        mult = config.backbone_lr_mult if config.backbone_lr_mult is not None else LOWER_RATE
        given = " (your --backbone-lr-mult)" if config.backbone_lr_mult is not None else ""
        return Decision("none", backbone_lr_mult=mult), (f"fine-tune the whole network, the backbone at {mult:g} times the "
                                                         f"head's rate{given} (--freeze none --backbone-lr-mult {mult:g})")
    return Decision("none"), "train everything (--freeze none)"
