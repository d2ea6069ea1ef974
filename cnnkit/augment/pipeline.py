"""Turning an ``--augment`` spec into what the training loop applies.

Operations run in the order written. Per-sample operations run where the data is read, each image
with its own draw from a seed the run derives for it (the same seed gives the same augmented
images whatever the number of loader workers); when every one of them has a batched version and
the data is in memory they run instead on whole batches on the training device (the fast path).
Mixup and CutMix run last, on the batch and its targets; with both, one is chosen per batch, and
``--mix-prob`` is the chance a batch is mixed at all. Nothing here runs during evaluation; a spec
whose crops show training images at another scale says so (``Resolved.eval_crop``), and
evaluation then reads the centre share of each picture that training crops show.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from cnnkit.augment.params import bind
from cnnkit.augment.spec import Call, parse, spec_error
from cnnkit.contracts._augmentations import BATCH_STAGE, PRESET_STAGE, SAMPLE_STAGE
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.registry import Entry, unknown_name_message

RESIZING = ("random-resized-crop", "resize")
"""Operations that want the original picture, so folders stream it to them undecimated."""


CROPS = ("center-crop", "random-crop")
"""Operations that keep a part of the picture, at the size they are given."""


@dataclass
class Step:
    entry: Entry
    params: dict[str, object]
    preset: str = ""
    """The preset the step comes from, if any, and what it expands to."""
    preset_spec: str = ""

    def describe(self) -> str:
        call = f"{self.entry.name}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"
        return f"{call} of preset {self.preset}" if self.preset else call

    def create(self) -> Callable:
        """The operation, from the entry's factory and these arguments (checked by the registry:
        a failure or a product that is not a function names the entry and plugin)."""
        return self.entry.create(**self.params)

    def create_batched(self) -> Callable:
        """The batched version of the operation, from the entry's ``batched`` factory."""
        return self.entry.metadata["batched"](**self.params)


@dataclass
class Resolved:
    """A spec's operations, presets expanded, arguments checked."""

    sample: list[Step] = field(default_factory=list)
    mixers: list[Step] = field(default_factory=list)
    declared_eval_crop: tuple[float, str] | None = None
    """A preset's own evaluation crop and its source (``imagenet``: 224 of 256, as torchvision's reference)."""
    made_for: dict[str, str] = field(default_factory=dict)
    """Presets made for large pictures: name -> what for (a note on tiny images)."""
    size: tuple[int, int] = (0, 0)

    @property
    def batchable(self) -> bool:
        """Whether every per-sample step has a batched version that does the same for these
        arguments (``batched_when(params)`` says, where it depends on them)."""
        return all("batched" in step.entry.metadata and step.entry.metadata.get("batched_when", lambda p: True)(step.params)
                   for step in self.sample)

    @property
    def needs_originals(self) -> bool:
        return any(step.entry.name in RESIZING for step in self.sample)

    @property
    def names(self) -> list[str]:
        return [step.entry.name for step in self.sample + self.mixers]

    def train_view(self) -> float | None:
        """The share of a picture's shorter side that training images show, where the operations
        fix it: resized to R, then cropped down to S, S/R (``alexnet-2012``: 224 of 256). None when
        it is drawn at random (``random-resized-crop``) or unknown (a crop of the original picture)."""
        side, shown, resized = float(min(self.size)), 1.0, False
        if not side:
            return None
        for step in self.sample:
            name = step.entry.name
            if name == "random-resized-crop":
                return None
            if name == "resize":
                side, resized = shorter_side(step.params["size"]), True
            elif name in CROPS:
                if self.needs_originals and not resized:
                    return None  # a crop of the stored picture, whose size is not known here
                kept = min(shorter_side(step.params["size"]), side)
                shown, side = shown * kept / side, kept
        return shown

    @property
    def eval_crop(self) -> tuple[float, str]:
        """(share of the centre evaluation reads, why): the preset's own, else the share training
        crops show; (1.0, "") for the whole picture."""
        if self.declared_eval_crop is not None:
            return self.declared_eval_crop
        shown = self.train_view()
        if shown is None or shown >= 1:
            return 1.0, ""
        return round(shown, 4), "the share of each picture that training crops show"


def shorter_side(size: object) -> float:
    """The shorter side a ``size`` argument asks for: one number, or (height, width)."""
    if isinstance(size, (list, tuple)):
        return float(min(size))
    if isinstance(size, (int, float)):
        return float(size)
    raise TypeError(f"size must be a number or (height, width), got {size!r}")


def expand_preset(spec: str, size: tuple[int, int]) -> str:
    side = min(size)
    return spec.format(pad=max(1, round(side / 8)), big=round(side * 256 / 224))


def resolve(spec: str, registry, size: tuple[int, int]) -> Resolved:
    """``spec``'s operations for a model input of ``size`` (height, width)."""
    height, width = size
    resolved = Resolved(size=(height, width))
    for call in parse(spec):
        if call.name not in registry:
            hint = "Run 'cnnkit augmentations' to list them."
            message = unknown_name_message("augmentation", call.name, registry.names(), hint)
            raise spec_error(spec, call.position, message)
        entry = registry.get(call.name)
        stage = entry.metadata.get("stage", SAMPLE_STAGE)
        if stage == PRESET_STAGE:
            add_preset(resolved, spec, call, entry, registry)
            continue
        params = bind(call, tuple(entry.metadata.get("params", ())), spec)
        if "size" in params and params["size"] is None:
            params["size"] = [height, width] if entry.name != "resize" else min(height, width)
        if stage == BATCH_STAGE:
            resolved.mixers.append(Step(entry, params))
        else:
            _mixers_last(resolved, spec, call)
            resolved.sample.append(Step(entry, params))
    return resolved


def add_preset(resolved: Resolved, spec: str, call: Call, entry: Entry, registry) -> None:
    """The operations of preset ``entry`` (written as ``call`` in ``spec``) added to ``resolved``."""
    if call.args or call.kwargs:
        raise spec_error(spec, call.position, f"preset {call.name} takes no arguments; write its operations instead: "
                         f"{expand_preset(entry.metadata['spec'], resolved.size)}")
    expanded = expand_preset(entry.metadata["spec"], resolved.size)
    inner = resolve(expanded, registry, resolved.size)
    if inner.sample:
        _mixers_last(resolved, spec, call)
    for step in inner.sample + inner.mixers:
        step.preset, step.preset_spec = step.preset or call.name, step.preset_spec or expanded
    resolved.sample += inner.sample
    resolved.mixers += inner.mixers
    resolved.made_for.update(inner.made_for)
    if entry.metadata.get("made_for"):
        resolved.made_for[call.name] = entry.metadata["made_for"]
    if entry.metadata.get("eval_crop"):
        resolved.declared_eval_crop = (entry.metadata["eval_crop"], entry.metadata["eval_crop_source"])


def _mixers_last(resolved: Resolved, spec: str, call: Call) -> None:
    """Refuse a per-sample operation written after mixup or cutmix."""
    if resolved.mixers:
        raise spec_error(spec, call.position, f"{call.name} comes after {resolved.mixers[-1].entry.name}; "
                         "put mixup and cutmix last (they mix whole batches and their labels)")


class SampleAugment:
    """The per-sample operations as one function of (uint8 image, seed), ending at ``size``. An
    operation that refuses the image it gets (a centre crop larger than a stored picture) stops
    training with one line naming it and the image's size."""

    def __init__(self, steps: list[Step], size: tuple[int, int]):
        self.steps = steps
        self.functions = [step.create() for step in steps]
        height, width = size
        self.size = (height, width)

    def __call__(self, image: torch.Tensor, seed: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for step, function in zip(self.steps, self.functions):
                try:
                    image = function(image)
                except Exception as exc:
                    raise refusal(step, image.shape, exc, AugmentRefused) from None
        if tuple(image.shape[-2:]) != self.size:
            from torchvision.transforms.v2 import functional as TF

            image = TF.center_crop(TF.resize(image, min(self.size), antialias=True), list(self.size))
        return image


class BatchAugment:
    """The batched operations and mixers as ``(images, targets, generator) -> (images, targets)``;
    with ``size``, batches end at that size (resized on the shorter side and centre-cropped)."""

    def __init__(self, steps: list[Step], mixers: list[Step], mix_prob: float, size: tuple[int, int] | None = None):
        self.functions = [step.create_batched() for step in steps]
        self.mixers = [step.create() for step in mixers]
        self.mix_prob = mix_prob
        self.size = (size[0], size[1]) if size is not None else None

    @property
    def mixes(self) -> bool:
        return bool(self.mixers)

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator):
        for function in self.functions:
            images, targets = function(images, targets, generator)
        if self.size is not None and tuple(images.shape[-2:]) != self.size:
            from torchvision.transforms.v2 import functional as TF

            images = TF.center_crop(TF.resize(images, min(self.size), antialias=True), list(self.size))
        if self.mixers:
            draw = torch.rand(2, generator=generator, device=generator.device).tolist()
            if draw[0] < self.mix_prob:
                mixer = self.mixers[min(int(draw[1] * len(self.mixers)), len(self.mixers) - 1)]
                images, targets = mixer(images, targets, generator)
        return images, targets


def stand_in_size(resolved: Resolved, size: tuple[int, int]) -> tuple[int, int]:
    """The dry run's image size: the model's input, where the operations get images at that size;
    where folders stream the stored pictures to the operations before the first resize (see
    ``needs_originals``), those pictures' size is known only as each is read (an operation refuses
    one too small then), so the input grown to fit the crops those operations take."""
    height, width = size
    if not resolved.needs_originals:
        return height, width
    for step in resolved.sample:
        if step.entry.name in RESIZING:
            break
        crop = step.params.get("size")
        if isinstance(crop, (int, list, tuple)) and not isinstance(crop, bool):
            crop_h, crop_w = (crop, crop) if isinstance(crop, int) else crop
            height, width = max(height, crop_h), max(width, crop_w)
    return height, width


def dry_run(resolved: Resolved, spec: str, channels: int, size: tuple[int, int], batched: bool) -> None:
    """Run the operations once, in order, on a blank image of the model's input (see
    ``stand_in_size``), so arguments that only an operation itself refuses (an even blur kernel, a
    crop larger than the image, colour noise on grayscale) are a usage error before anything is
    written, naming the operation and the size of the images it would get."""
    image = torch.full((channels, *(size if batched else stand_in_size(resolved, size))), 128, dtype=torch.uint8)
    batch, targets = torch.full((2, channels, *size), 0.5), torch.eye(2)
    generator = torch.Generator().manual_seed(0)
    for step in resolved.sample:
        with _refusal(step, image.shape if not batched else batch.shape[1:]):
            if batched:
                batch, targets = step.create_batched()(batch, targets, generator)
            else:
                function = step.create()
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    image = function(image)
    batch = torch.full((2, channels, *size), 0.5)
    for step in resolved.mixers:
        with _refusal(step, batch.shape[1:]):
            step.create()(batch, targets, generator)


class AugmentRefused(UsageError):
    """An operation refused an image while training. Raised in a loader worker, it comes back as
    this class made from the worker's traceback: its last line is the message."""

    def __init__(self, message: str):
        lines = str(message).strip().splitlines()
        if len(lines) > 1:
            message = lines[-1].split(": ", 1)[-1]
        super().__init__(message)


def refusal(step: Step, shape, exc: Exception, kind: type[UsageError] = UsageError) -> CnnkitError:
    """What an operation raised for arguments it cannot use, as one usage error naming it and the
    images it was given (a plugin that broke its contract: its own error, as it is)."""
    if isinstance(exc, CnnkitError) and exc.__cause__ is None:
        return exc
    # the operation's own words, without the registry's wrapping (see cnnkit.registry.guarded)
    cause = exc.__cause__ if isinstance(exc, CnnkitError) and exc.__cause__ is not None else exc
    lines = str(cause).strip().splitlines()
    expansion = f" (preset {step.preset} is: {step.preset_spec})" if step.preset else ""
    return kind(f"--augment: {step.describe()} cannot run on {'x'.join(str(n) for n in shape)} images: "
                f"{lines[0] if lines else type(cause).__name__}{expansion}")


@contextmanager
def _refusal(step: Step, shape: tuple[int, ...]):
    try:
        yield
    except Exception as exc:
        raise refusal(step, shape, exc) from None
