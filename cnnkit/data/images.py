"""Reading one image file into the uint8 ``(C, H, W)`` array a model is fed.

Every path that turns a file or a stored array into pixels goes through :func:`fit`, so the
in-memory and streaming paths give the same bytes. What a file may be, and what cnnkit does:

- grayscale, 1-bit, palette, RGB, CMYK: converted to the channels the model wants;
- with transparency (RGBA, LA, palette with a transparent colour): composited over white, as an
  image viewer shows it;
- 16-bit and floating-point: scaled to 8 bits by their nominal range; 32-bit integers by 65535
  when no value exceeds it, else by their own maximum, with a warning (see :func:`to_8_bits`);
- EXIF-rotated (phones): turned upright first;
- for pretrained weights (``as_weights``): decoded whole, resized and centre-cropped as the
  weights' own ``transforms()`` do; else JPEGs decode at a reduced scale, resized in one step;
- corrupt, truncated, empty, not an image, too large: :class:`UnreadableImage` with the reason.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from cnnkit.console import warn

MAX_PIXELS = 64_000_000
"""Largest image cnnkit decodes (a 64-megapixel RGB image takes about 190 MB)."""
GRAY_MODES = ("1", "L", "LA", "I", "F")
JPEG_END = b"\xff\xd9"


class UnreadableImage(Exception):
    """A file that cannot be used as an image; ``str()`` is the reason, for a warning."""


RESCALED_WARNINGS = 5
"""Files scaled by their own maximum that are named in a warning; the rest are scaled silently."""
_rescaled: set[str] = set()
"""The files named so far while reading one dataset (a streamed file is read every epoch)."""


def forget_rescaled() -> None:
    """Start a new dataset's warnings about 32-bit files."""
    _rescaled.clear()


def tell_rescaled(origin: str, low: float, high: float) -> None:
    if origin in _rescaled or len(_rescaled) > RESCALED_WARNINGS:
        return
    _rescaled.add(origin)
    if len(_rescaled) > RESCALED_WARNINGS:
        warn("more 32-bit images hold values beyond 16 bits; each is scaled by its own maximum like those above "
             "(no further warnings).")
    elif low == high:
        warn(f"'{origin}' holds one 32-bit value, {high:.0f}, in every pixel, beyond 16 bits; scaled by its own maximum "
             "(as cnnkit scales such files) it is pure white (255), a blank image whose level tells nothing; "
             "convert it to 8 or 16 bits to choose the scale, or remove it.")
    else:
        warn(f"'{origin}' holds 32-bit values up to {high:.0f}, beyond 16 bits; cnnkit scales it by that maximum "
             "(to 255), so its brightness is its own, not comparable with other files'; convert it to 8 or 16 bits "
             "to choose the scale.")


def _pil():
    from PIL import Image

    return Image


def open_image(path: Path):
    """``path`` opened lazily (header read, pixels not decoded), refusing images too large."""
    Image = _pil()
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:  # a link to nothing, or deleted since it was listed
        raise UnreadableImage("a link to nothing" if path.is_symlink() else (exc.strerror or str(exc))) from None
    if empty:
        raise UnreadableImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(reason(exc)) from None
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise UnreadableImage(
            f"{img.width}x{img.height} pixels, more than cnnkit reads ({MAX_PIXELS // 1_000_000} megapixels); shrink it"
        )
    return img


def reason(exc: BaseException) -> str:
    """Pillow's message, in the words a user needs."""
    text = str(exc).strip() or type(exc).__name__
    if text.startswith("cannot identify image file"):
        return "not an image (or a format Pillow cannot read)"
    if "truncated" in text.lower():
        return "truncated (the file ends early)"
    return text


def probe(path: Path) -> tuple[str, int, int]:
    """A check that ``path`` is a whole, usable image, cheap for the common formats: a PNG's chunks
    pass their checksums; a JPEG ends with its end-of-image marker (else it is decoded at 1/8
    scale to tell trailing data from truncation); anything else, and images of 32-bit or float
    pixels, are decoded and converted. Returns the image's (mode, width, height)."""
    with open_image(path) as img:
        mode, width, height, kind = img.mode, img.width, img.height, img.format
    cheap = mode not in ("I", "F") and kind in ("PNG", "JPEG")
    if kind == "PNG" and cheap:
        with open_image(path) as img:
            _checked(img.verify)
    elif kind == "JPEG" and cheap:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 1024))
            ended = JPEG_END in f.read()
        if not ended:
            with open_image(path) as img:
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
                _checked(img.load)
    else:
        with open_image(path) as img:
            _checked(lambda: [fit(img, (4, 4), channels, origin=str(path)) for channels in (1, 3)])
    return mode, width, height


def _checked(action) -> None:
    try:
        action()
    except UnreadableImage:
        raise
    except Exception as exc:  # Pillow raises many types for damaged data
        raise UnreadableImage(reason(exc)) from None


def stored_channels(mode: str) -> int:
    return 1 if mode in GRAY_MODES or mode.startswith("I;16") else 3


def decode(path: Path, size: tuple[int, int] | None, channels: int, crop: float = 1.0, resample: str = "bilinear",
           as_weights: bool = False) -> np.ndarray:
    """The image at ``path`` as uint8 ``(channels, *size)``, upright (``size`` None: as stored).

    By default the centre region of the target's aspect ratio is resized to ``size`` in one step
    (what resizing the shorter side and centre-cropping keeps), and a JPEG is decoded at the
    smallest of 1/2, 1/4, 1/8 scale that still covers ``size``: much faster for large photos,
    a few levels away from a full decode. ``as_weights`` reads it as pretrained weights' own
    evaluation transforms do (see :func:`resize_then_crop`): decoded whole, resized, cropped."""
    from PIL import ImageOps

    with open_image(path) as img:
        try:
            if size is not None and not as_weights:
                side = max(size)
                img.draft("L" if channels == 1 else "RGB", (side, side))  # JPEG: decode at a smaller scale
            img = ImageOps.exif_transpose(img)
            return fit(img, size, channels, crop, resample, origin=str(path), as_weights=as_weights)
        except UnreadableImage:
            raise
        except Exception as exc:  # truncated data surfaces here, as OSError, SyntaxError, ...
            raise UnreadableImage(reason(exc)) from None


def reads_as_weights(backbone: str, pretrained: bool) -> bool:
    """Whether a run reads its images as its pretrained weights' transforms do (:func:`decode`'s
    ``as_weights``): when it fine-tunes pretrained weights, whose own ``transforms()`` are the
    reference for their pixels. Training from scratch keeps the faster reduced-scale decode.
    Checkpoints are read back as they were trained: this rule, on the configuration they record."""
    return bool(backbone) and bool(pretrained)


def run_reads_as_weights(config: dict) -> bool:
    """:func:`reads_as_weights` for a finished run, from the configuration its checkpoint and
    ``config.json`` record: how ``evaluate`` and ``predict`` read images as training did."""
    return reads_as_weights(str(config.get("backbone") or ""), bool(config.get("pretrained", True)))


def fit(img, size: tuple[int, int] | None, channels: int, crop: float = 1.0, resample: str = "bilinear",
        origin: str = "", as_weights: bool = False) -> np.ndarray:
    """A PIL image as uint8 ``(channels, *size)`` (see :func:`decode`); ``crop`` below 1 keeps
    that share of the centre, as pretrained models' evaluation transforms do (224 of 256).
    ``origin`` names the image in warnings."""
    Image = _pil()
    img = flatten_alpha(to_8_bits(img, origin))
    img = img.convert("L" if channels == 1 else "RGB")
    if size is not None and (img.size != (size[1], size[0]) or crop != 1):
        method = Image.Resampling.BICUBIC if resample == "bicubic" else Image.Resampling.BILINEAR
        if as_weights:
            img = resize_then_crop(img, size, crop, method)
        else:
            img = img.resize((size[1], size[0]), method, box=centre_box(img.size, size, crop))
    array = np.array(img, dtype=np.uint8)  # a writable copy: torch refuses read-only memory
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def resize_then_crop(img, size: tuple[int, int], crop: float, method):
    """torchvision's ``weights.transforms()`` and timm's evaluation transform, on a PIL image: the
    shorter side resized to ``resize_size`` (the side over ``crop``: 256 for 224 at 0.875), the
    longer in proportion (truncated, as torchvision does), then the centre cropped to ``size`` at
    whole pixels. A target that is not square is covered keeping the aspect ratio (timm's way)."""
    height, width = size
    source_w, source_h = img.size
    if height == width:
        short = resize_size(height, crop)
        long = int(short * max(source_w, source_h) / min(source_w, source_h))
        new_w, new_h = (short, long) if source_w <= source_h else (long, short)
    else:
        scale = max(resize_size(height, crop) / source_h, resize_size(width, crop) / source_w)
        new_w, new_h = round(source_w * scale), round(source_h * scale)
    img = img.resize((new_w, new_h), method)
    top, left = crop_offset(new_h, height), crop_offset(new_w, width)
    return img.crop((left, top, left + width, top + height))  # beyond the image (crop above 1): black, as torchvision pads


def resize_size(side: int, crop: float) -> int:
    """The resize before a centre crop of ``side`` keeping ``crop`` of it: timm's
    ``floor(side / crop_pct)``; the small allowance recovers torchvision's whole sizes from a
    fraction stored to 4 decimals (299/342 kept as 0.8743)."""
    return math.floor(side / crop + 0.05)


def crop_offset(resized: int, wanted: int) -> int:
    """Where torchvision's ``center_crop`` starts, padding first when the image is smaller."""
    return int(round((resized - wanted) / 2.0)) if resized >= wanted else -((wanted - resized) // 2)


def fit_array(array: np.ndarray, size: tuple[int, int] | None, channels: int, crop: float = 1.0, resample: str = "bilinear",
              as_weights: bool = False) -> np.ndarray:
    """A stored uint8 image ``(C, H, W)`` (C is 1 or 3) fitted like a decoded file (``size`` None: its own)."""
    height, width = size if size is not None else array.shape[1:]
    if array.shape == (channels, height, width) and crop == 1:
        return array
    if array.shape[0] == 1 and array.shape[1:] == (height, width) and crop == 1:
        return np.repeat(array, channels, axis=0)
    img = _pil().fromarray(array[0] if array.shape[0] == 1 else np.ascontiguousarray(array.transpose(1, 2, 0)))
    return fit(img, (height, width), channels, crop, resample, as_weights=as_weights)


def flatten_alpha(img):
    """Transparent pixels composited over white; images without transparency unchanged."""
    Image = _pil()
    if img.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and not (img.mode == "P" and "transparency" in img.info):
        return img
    rgba = img.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def centre_box(source: tuple[int, int], size: tuple[int, int], crop: float = 1.0) -> tuple[float, float, float, float]:
    """The largest centred region of ``source`` (width, height) with the aspect ratio of ``size``
    (height, width), shrunk to ``crop`` of its sides."""
    source_w, source_h = source
    height, width = size
    scale = min(source_w / width, source_h / height) * crop
    box_w, box_h = width * scale, height * scale
    left, top = max(0.0, (source_w - box_w) / 2), max(0.0, (source_h - box_h) / 2)
    return (left, top, min(float(source_w), left + box_w), min(float(source_h), top + box_h))  # rounding stays inside


def to_8_bits(img, origin: str = ""):
    """16-bit, 32-bit integer and floating-point images scaled to 8 bits: 16-bit by 65535; floats
    from 0..1 or 0..255 (other ranges are refused); 32-bit integers by 65535 when no value
    exceeds it (16-bit PNGs read by older Pillow, 16-bit data saved as 32-bit), else by their own maximum,
    with a warning naming ``origin``. A 32-bit file carries no range of its own: scaled by
    2**32 - 1, the 24-bit values of a camera or a sum of frames come out black, while an image
    viewer (ImageJ) shows them by their range."""
    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    pixels = np.asarray(img).astype(np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    if img.mode == "F":
        if not (np.isfinite(pixels).all() and low >= 0 and high <= 255):
            raise UnreadableImage(f"floating-point values from {low:g} to {high:g} (cnnkit reads 0..1 or 0..255); convert it to 8-bit")
        full = 1.0 if high <= 1.0 else 255.0
    elif low < 0:
        raise UnreadableImage(f"negative pixel values (down to {low:.0f}); convert it to 8-bit")
    elif img.mode.startswith("I;16") or high <= 65535:
        full = 65535.0
    else:
        full = high
        tell_rescaled(origin or "an image", low, high)
    return _pil().fromarray(np.round(pixels * (255.0 / full)).astype(np.uint8), "L")
