"""Built-in augmentations and presets. Each operation declares its stage and typed parameters
(``cnnkit.contracts.AugmentParam``); those with a batched version run on whole in-memory batches
on the training device. Presets expand to a spec for the model's input size."""

from collections.abc import Mapping
from functools import partial
from typing import Any

from cnnkit import hookimpl
from cnnkit.contracts import BATCH_STAGE, PRESET_STAGE, SAMPLE_STAGE, AugmentationRegister
from cnnkit.contracts import AugmentParam as P

SIZE = P("size", "int", None, min=1, max=4096, help="output size; default: the model's input size")
PROB = P("p", "float", 0.5, min=0, max=1, help="probability per image")


OPERATIONS = {
    # name: (help, params, batched?)
    "random-crop": ("Random crop, after padding each side (reflect)", (
        SIZE, P("padding", "int", 4, min=0, max=1024),
        P("pad_mode", "choice", "reflect", choices=("constant", "edge", "reflect", "symmetric"))), True),
    "random-resized-crop": ("Random area and aspect crop resized to size (Inception-style)", (
        SIZE, P("scale", "pair", (0.08, 1.0), min=0.001, max=1), P("ratio", "pair", (0.75, 1.333), min=0.01, max=100)), False),
    "center-crop": ("Centre crop", (SIZE,), False),
    "resize": ("Resize the shorter side to size", (P("size", "int", None, min=1, max=4096, help="shorter side"),), False),
    "hflip": ("Mirror left-right", (PROB,), True),
    "vflip": ("Mirror top-bottom", (PROB,), True),
    "rotation": ("Rotate by up to +-degrees", (P("degrees", "pair", 15.0, min=-360, max=360),), False),
    "random-affine": ("Rotate, translate (fraction of size), scale and shear (degrees)", (
        P("degrees", "pair", 10.0, min=-360, max=360), P("translate", "float", 0.1, min=0, max=1),
        P("scale", "pair", (0.9, 1.1), min=0.01, max=10), P("shear", "pair", 0.0, min=-90, max=90)), False),
    "color-jitter": ("Random brightness, contrast, saturation (factors in [1-x, 1+x]) and hue (+-x), in an order "
                     "drawn per image (torchvision's ColorJitter)", (
        P("brightness", "float", 0.4, min=0, max=10), P("contrast", "float", 0.4, min=0, max=10),
        P("saturation", "float", 0.4, min=0, max=10),
        P("hue", "float", 0.0, min=0, max=0.5)), True),
    "brightness": ("Brighter or darker by a factor in [1-x, 1+x]", (P("amount", "float", 0.2, min=0, max=1),), True),
    "grayscale": ("Turn grayscale (kept as the same channels)", (P("p", "float", 0.1, min=0, max=1),), True),
    "gaussian-blur": ("Gaussian blur with sigma drawn from a range", (
        P("kernel", "int", 3, min=1, max=99, help="odd"), P("sigma", "pair", (0.1, 2.0), min=0.001)), False),
    "gaussian-noise": ("Add Gaussian noise (std on the 0..1 scale)", (P("std", "float", 0.05, min=0, max=10),), True),
    "random-erasing": ("Cutout: erase a random rectangle (Zhong et al. 2020)", (
        PROB, P("scale", "pair", (0.02, 0.33), min=0.001, max=1), P("ratio", "pair", (0.3, 3.3), min=0.01, max=100)), True),
    "pca-lighting": ("AlexNet's colour noise along the RGB principal components (Krizhevsky et al. 2012); RGB only", (
        P("std", "float", 0.1, min=0),), True),
    "autoaugment": ("AutoAugment learned policy (Cubuk et al. 2019)", (
        P("policy", "choice", "imagenet", choices=("imagenet", "cifar10", "svhn")),), False),
    "randaugment": ("RandAugment (Cubuk et al. 2020)", (P("ops", "int", 2, min=1, max=20), P("magnitude", "int", 9, min=0, max=30)), False),
    "trivialaugment": ("TrivialAugment Wide (Mueller & Hutter 2021)", (), False),
    "augmix": ("AugMix (Hendrycks et al. 2020)", (P("severity", "int", 3, min=1, max=10), P("width", "int", 3, min=1, max=10)), False),
}

def crop_batchable(params: Mapping[str, Any]) -> bool:
    """The batched random crop pads by reflection; symmetric padding runs per sample."""
    return bool(params["pad_mode"] != "symmetric")


BATCHED_WHEN = {"random-crop": crop_batchable}
"""Arguments the batched versions cannot do: those specs run per sample instead."""

MIXERS = {
    "mixup": ("Mixup (Zhang et al. 2018): blend image pairs and their labels; training accuracy counts the dominant label",
              (P("alpha", "float", 0.2, min=0.001),)),
    "cutmix": ("CutMix (Yun et al. 2019): paste a box from another image, labels weighted by area; "
               "training accuracy counts the dominant label",
               (P("alpha", "float", 1.0, min=0.001),)),
}

PRESETS = {
    "cifar": ("random-crop(padding={pad}), hflip",
              "CIFAR recipe (He et al. 2016): random crop with 4-pixel padding at 32x32 (1/8 of the size), horizontal flip"),
    "imagenet": ("random-resized-crop, hflip, color-jitter(0.4, 0.4, 0.4)",
                 "torchvision's ImageNet reference: random-resized crop, horizontal flip, colour jitter 0.4; "
                 "evaluated on the centre 224 of 256"),
    "alexnet-2012": ("resize({big}), center-crop({big}), random-crop(padding=0), hflip, pca-lighting(0.1)",
                     "Krizhevsky et al. 2012: random 224 crops of 256x256 images (scaled to the input size), "
                     "horizontal flips, PCA lighting noise with std 0.1; evaluated on the centre crop (the paper "
                     "averages ten crops)"),
    "keras": ("random-affine(degrees=20, translate=0.1, scale=(0.7, 1.3), shear=11.5), hflip",
              "Keras ImageDataGenerator as tutorials use it: rotation 20, width/height shift 0.1, shear 0.2 rad, "
              "zoom 0.3, horizontal flip"),
    "random-shift": ("random-crop(padding={pad}, pad_mode=edge)",
                     "translate by up to 1/8 of the size, edge padding (cnnkit 0.1's random-shift)"),
    "autoaugment-imagenet": ("autoaugment(imagenet)", "AutoAugment's ImageNet policy (Cubuk et al. 2019)"),
    "autoaugment-cifar10": ("autoaugment(cifar10)", "AutoAugment's CIFAR-10 policy (Cubuk et al. 2019)"),
    "autoaugment-svhn": ("autoaugment(svhn)", "AutoAugment's SVHN policy (Cubuk et al. 2019)"),
    "randaugment": ("randaugment", "RandAugment, 2 ops at magnitude 9 (Cubuk et al. 2020)"),
    "trivialaugment": ("trivialaugment", "TrivialAugment Wide (Mueller & Hutter 2021)"),
    "augmix": ("augmix", "AugMix, severity 3, width 3 (Hendrycks et al. 2020)"),
}
"""Preset name: (spec, source). ``{pad}`` is 1/8 of the input size; ``{big}`` is the input
size times 256/224."""

EVAL_CROPS = {"imagenet": (0.875, "torchvision's ImageNet reference evaluates on the centre 224 of 256")}
"""Presets whose evaluation reads a centre crop that their operations do not imply (a random-resized
crop has no fixed share); ``alexnet-2012``'s follows from its crops."""

MADE_FOR = {name: "ImageNet photos (224x224 crops of larger pictures)"
            for name in ("imagenet", "alexnet-2012", "autoaugment-imagenet")}
"""Presets made for large pictures, noted when the images are tiny."""


def _help(text: str, params: tuple[P, ...]) -> str:
    from cnnkit.augment.params import signature

    return f"{text} {signature(params)}" if params else text


@hookimpl
def register_augmentations(register: AugmentationRegister) -> None:
    for name, (text, params, batched) in OPERATIONS.items():
        attribute = name.replace("-", "_")
        register(name, f"cnnkit.augment.ops:{attribute}", help=_help(text, params), stage=SAMPLE_STAGE, params=params,
                 batched=f"cnnkit.augment.ops:batched_{attribute}" if batched else None,
                 batched_when=BATCHED_WHEN.get(name))
    for name, (text, params) in MIXERS.items():
        register(name, f"cnnkit.augment.ops:{name}", help=_help(text, params), stage=BATCH_STAGE, params=params)
    for name, (spec, source) in PRESETS.items():
        if name in OPERATIONS:
            continue  # randaugment, trivialaugment, augmix: the operation with its defaults is the preset
        crop, crop_source = EVAL_CROPS.get(name, (None, None))
        register(name, partial(str, spec), help=f"preset: {source} = {spec}", stage=PRESET_STAGE, spec=spec,
                 eval_crop=crop, eval_crop_source=crop_source, made_for=MADE_FOR.get(name))
