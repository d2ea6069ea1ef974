"""The option mini-languages, each parsed in one place into a value: ``--image-size`` (``N`` or
``HxW``), ``--model-kwargs`` (``KEY=VALUE`` pairs as Python literals), ``--weights`` (a file or a
name), ``--freeze`` (what of a backbone stays frozen)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal, cast

from cnnkit.errors import UsageError


def parse_image_size(text: str) -> tuple[int, int] | None:
    """``--image-size``: ``N`` (square) or ``HxW``; None when empty (the model's own size)."""
    if not text:
        return None
    parts = text.lower().split("x")
    if len(parts) > 2 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise UsageError(f"--image-size '{text}' must be N or HxW with positive whole numbers, e.g. 224 or 32x48.")
    sizes = [int(part) for part in parts]
    return (sizes[0], sizes[-1])


RESERVED_KWARGS = ("num_classes", "in_channels")


def parse_model_kwargs(text: str) -> dict[str, Any]:
    """``--model-kwargs``: ``KEY=VALUE`` pairs separated by commas (outside brackets and quotes,
    so ``channels=(32,64)`` is one pair). A value is a Python literal where it reads as one
    (``0.3``, ``True``, ``None``, ``(32,64)``), else text (``norm=batch``), as in timm's training
    script. The class and channel counts come from the data and cannot be set here; a key given
    twice is refused, as in config files."""
    import ast

    kwargs: dict[str, Any] = {}
    for pair in _top_level_parts(text):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--model-kwargs '{pair}' must be KEY=VALUE, e.g. dropout=0.3.")
        if key in RESERVED_KWARGS:
            raise UsageError(f"--model-kwargs cannot set {key}: it comes from the data.")
        if key in kwargs:
            raise UsageError(f"--model-kwargs: '{key}' is given twice; keep one.")
        try:
            kwargs[key] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            kwargs[key] = raw.strip()
    return kwargs


def _top_level_parts(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes, blank parts dropped."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")


def is_weights_file(weights: str) -> bool:
    """Whether ``--weights`` names a file (a path, or a name with a weights file's suffix) rather
    than a torchvision weights name such as ``IMAGENET1K_V1``."""
    return bool(weights) and (os.sep in weights or weights.endswith(WEIGHT_FILE_SUFFIXES))


FreezeMode = Literal["features", "none", "auto", "stages"]


@dataclass(frozen=True)
class Freeze:
    """A ``--freeze`` value: what of a pretrained backbone stays frozen. ``features`` (everything
    but the new head), ``none``, ``auto`` (the transfer rule decides from the data) or ``stages``
    (the first ``stages`` stages)."""

    mode: FreezeMode
    stages: int = 0

    def __str__(self) -> str:
        """As ``--freeze`` spells it, and as checkpoints record it."""
        return str(self.stages) if self.mode == "stages" else self.mode

    @property
    def auto(self) -> bool:
        return self.mode == "auto"

    @property
    def freezes_nothing(self) -> bool:
        """``none``, or 0 stages."""
        return self.mode == "none" or (self.mode == "stages" and self.stages == 0)


def parse_freeze(text: str, *, pretrained: bool = True) -> Freeze:
    """``--freeze``: ``features``, ``none``, ``auto`` or a number of stages. Not given (``""``),
    it is ``features`` for a pretrained backbone (only the new head trains) and ``none`` for one
    that starts from a random initialisation (everything trains)."""
    if not text:
        return Freeze("features" if pretrained else "none")
    if text in ("features", "none", "auto"):
        return Freeze(cast(FreezeMode, text))
    if text.isascii() and text.isdigit():
        return Freeze("stages", int(text))
    raise UsageError(f"--freeze '{text}' must be features, none, auto or a number of stages.")


def absolute_uri(uri: str, base: str) -> str:
    """``uri`` (``--log-uri``) with a relative file path made absolute against the folder ``base``:
    ``sqlite:///mlflow.db`` -> ``sqlite:////BASE/mlflow.db``, ``logs/run.jsonl`` -> ``/BASE/logs/run.jsonl``;
    server and absolute URIs are kept. A relative one would name another file when a run is resumed
    from another folder, splitting its log."""
    from urllib.parse import urlparse

    scheme = urlparse(uri).scheme
    if scheme.split("+")[0] == "sqlite" and uri.count("/") >= 3:
        prefix, _, path = uri.partition(":///")
        if path and not path.startswith("/") and not path.startswith(":memory:"):
            return f"{prefix}:///{os.path.abspath(os.path.join(base, os.path.expanduser(path)))}"
        return uri
    if uri and len(scheme) <= 1:  # a plain path (or a Windows drive letter)
        return os.path.abspath(os.path.join(base, os.path.expanduser(uri)))
    return uri
