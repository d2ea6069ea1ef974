"""Help for unbalanced classes: per-class weights in the loss (``--class-weights``) and
class-balanced draws of the training images (``--sampler balanced``).

``auto`` weights are scikit-learn's ``compute_class_weight("balanced")``: ``N / (K * n_c)`` for
class ``c`` with ``n_c`` of the ``N`` training images and ``K`` classes, so a class of average
size weighs 1 and the weights of all images sum to ``N``. A file gives them by hand: a JSON list
of one weight per class in class order, or an object naming every class.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from cnnkit.errors import UsageError
from cnnkit.registry import suggest

OPTION = "--class-weights"


def class_counts(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Images per class (int64, on the CPU), for labels ``0 .. classes - 1``."""
    return torch.bincount(labels.cpu(), minlength=classes)


def inverse_frequency(labels: torch.Tensor, names: list[str]) -> torch.Tensor:
    """``N / (K * n_c)`` per class, over the training labels; a class without training images
    has no frequency to invert and is refused."""
    counts = class_counts(labels, len(names))
    missing = [name for name, count in zip(names, counts.tolist()) if count == 0]
    if missing:
        shown = ", ".join(repr(name) for name in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UsageError(f"{OPTION} auto: class(es) {shown} have no training images, so their inverse frequency is undefined; "
                         f"add training images of them, or give every class a weight in a JSON file ({OPTION} FILE).")
    return (len(labels) / (len(names) * counts.double())).float()


def read_weights_file(path: Path, names: list[str]) -> torch.Tensor:
    """The weights a JSON file gives: a list of ``len(names)`` numbers in class order, or an
    object ``{class name: weight}`` naming every class; each a finite number above 0 (a zero weight
    would make a batch of only that class a 0/0 loss)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        close = suggest(path.name, ["auto", "none"])
        hint = f" Did you mean {close[0]!r}?" if close else ""  # a misspelt auto or none reads as a file name
        raise UsageError(f"{OPTION} '{path}' does not exist; pass auto, none, or a JSON file of per-class weights.{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{OPTION} '{path}' cannot be read: {reason}.") from None
    def once_each(pairs: list[tuple[str, object]]) -> dict[str, object]:
        names_given = [name for name, _ in pairs]
        twice = next((name for name in names_given if names_given.count(name) > 1), None)
        if twice is not None:
            raise UsageError(f"{OPTION} '{path}' names class {twice!r} twice; give each class once.")
        return dict(pairs)

    try:
        given = json.loads(text, object_pairs_hook=once_each)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{OPTION} '{path}' is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from None
    return torch.tensor(_weights_in_class_order(given, path, names), dtype=torch.float32)


def _weights_in_class_order(given: object, path: Path, names: list[str]) -> list[float]:
    if isinstance(given, list):
        if len(given) != len(names):
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise UsageError(f"{OPTION} '{path}' holds {len(given)} weight(s), but the data has {len(names)} classes ({shown}); "
                             "give one per class, in class order, or an object by class name.")
        pairs = list(zip(names, given))
    elif isinstance(given, dict):
        _check_names(given, path, names)
        pairs = [(name, given[name]) for name in names]
    else:
        raise UsageError(f"{OPTION} '{path}' must hold a JSON list of weights in class order, or an object "
                         f"{{class name: weight}}; it holds {type(given).__name__} {json.dumps(given)[:40]}.")
    for name, weight in pairs:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            raise UsageError(f"{OPTION} '{path}': the weight of class {name!r} must be a finite number above 0, "
                             f"got {json.dumps(weight)}.")
    return [float(weight) for _, weight in pairs]


def _check_names(given: dict, path: Path, names: list[str]) -> None:
    """Every key a class of the data, and every class a key; the first stray key with the
    closest class names."""
    for key in given:
        if key not in names:
            close = suggest(key, names)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UsageError(f"{OPTION} '{path}': unknown class {key!r}.{hint} The data's classes: "
                             f"{', '.join(names[:10])}{', ...' if len(names) > 10 else ''}.")
    missing = [name for name in names if name not in given]
    if missing:
        shown = ", ".join(repr(name) for name in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UsageError(f"{OPTION} '{path}' gives no weight for class(es) {shown}; name every class.")


def class_weights(spec: str, labels: torch.Tensor, names: list[str]) -> torch.Tensor | None:
    """The loss's per-class weights (float32, on the CPU) that ``--class-weights spec`` asks for,
    ``labels`` being the training split's; None for ``none``."""
    if spec == "none":
        return None
    if spec == "auto":
        return inverse_frequency(labels, names)
    return read_weights_file(Path(spec).expanduser(), names)


def describe_weights(weights: torch.Tensor, names: list[str], spec: str) -> str:
    """One line: the lightest and the heaviest class and their weights."""
    low, high = int(weights.argmin()), int(weights.argmax())
    source = "auto, inverse class frequency" if spec == "auto" else spec
    return (f"class weights ({source}): from {weights[low].item():.3g} (class {names[low]!r}) "
            f"to {weights[high].item():.3g} (class {names[high]!r})")


def balanced_draws(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``len(labels)`` image indices drawn with replacement, each class equally likely (among
    those with images) and each image equally likely within its class: the distribution of
    PyTorch's ``WeightedRandomSampler`` with weight ``1 / n_class`` per image, drawn as a class
    then an image of it (no limit on the number of images, unlike ``torch.multinomial``'s 2**24)."""
    labels = labels.cpu()
    n = len(labels)
    counts = torch.bincount(labels)
    present = torch.nonzero(counts).flatten()
    grouped = torch.argsort(labels, stable=True)  # image indices, class by class
    starts = torch.cumsum(counts, 0) - counts
    drawn = present[torch.randint(len(present), (n,), generator=generator)]
    within = (torch.rand(n, generator=generator, dtype=torch.float64) * counts[drawn]).long()
    return grouped[starts[drawn] + torch.minimum(within, counts[drawn] - 1)]
