"""Reading one image file into the uint8 ``(C, H, W)`` array a model is fed.

Every path that turns a file or a stored array into pixels goes through :func:`fit`, so the
in-memory and streaming paths give the same bytes. What a file may be, and what cnnkit does:

- grayscale, 1-bit, palette, RGB, CMYK: converted to the channels the model wants;
- with transparency (RGBA, LA, palette with a transparent colour): composited over white, as an
  image viewer shows it;
- 16-bit, 32-bit and floating-point: scaled to 8 bits by their nominal range;
- EXIF-rotated (phones): turned upright first;
- corrupt, truncated, empty, not an image, too large: :class:`UnreadableImage` with the reason.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

MAX_PIXELS = 64_000_000
"""Largest image cnnkit decodes (a 64-megapixel RGB image takes about 190 MB)."""
GRAY_MODES = ("1", "L", "LA", "I", "F")
JPEG_END = b"\xff\xd9"


class UnreadableImage(Exception):
    """A file that cannot be used as an image; ``str()`` is the reason, for a warning."""


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
            _checked(lambda: [fit(img, (4, 4), channels) for channels in (1, 3)])
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


def decode(path: Path, size: tuple[int, int] | None, channels: int, crop: float = 1.0, resample: str = "bilinear") -> np.ndarray:
    """The image at ``path`` as uint8 ``(channels, *size)``: upright, the centre region of the
    target's aspect ratio resized to ``size`` (what resizing the shorter side and centre-cropping
    keeps), in one step so memory never exceeds the decoded image. ``size`` None: as stored."""
    from PIL import ImageOps

    with open_image(path) as img:
        try:
            if size is not None:
                side = max(size)
                img.draft("L" if channels == 1 else "RGB", (side, side))  # JPEG: decode at a smaller scale
            img = ImageOps.exif_transpose(img)
            return fit(img, size, channels, crop, resample)
        except UnreadableImage:
            raise
        except Exception as exc:  # truncated data surfaces here, as OSError, SyntaxError, ...
            raise UnreadableImage(reason(exc)) from None


def fit(img, size: tuple[int, int] | None, channels: int, crop: float = 1.0, resample: str = "bilinear") -> np.ndarray:
    """A PIL image as uint8 ``(channels, *size)`` (see :func:`decode`); ``crop`` below 1 keeps
    that share of the centre, as pretrained models' evaluation transforms do (224 of 256)."""
    Image = _pil()
    img = flatten_alpha(to_8_bits(img))
    img = img.convert("L" if channels == 1 else "RGB")
    if size is not None and (img.size != (size[1], size[0]) or crop < 1):
        method = Image.Resampling.BICUBIC if resample == "bicubic" else Image.Resampling.BILINEAR
        img = img.resize((size[1], size[0]), method, box=centre_box(img.size, size, crop))
    array = np.array(img, dtype=np.uint8)  # a writable copy: torch refuses read-only memory
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def fit_array(array: np.ndarray, size: tuple[int, int], channels: int, crop: float = 1.0, resample: str = "bilinear") -> np.ndarray:
    """A stored uint8 image ``(C, H, W)`` (C is 1 or 3) fitted like a decoded file."""
    size = tuple(size) if size is not None else tuple(array.shape[1:])
    if array.shape == (channels, *size) and crop == 1:
        return array
    if array.shape[0] == 1 and array.shape[1:] == tuple(size) and crop == 1:
        return np.repeat(array, channels, axis=0)
    img = _pil().fromarray(array[0] if array.shape[0] == 1 else np.ascontiguousarray(array.transpose(1, 2, 0)))
    return fit(img, size, channels, crop, resample)


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


def to_8_bits(img):
    """16-bit, 32-bit integer and floating-point images scaled to 8 bits by their nominal range:
    16-bit by 65535; 32-bit integers by 65535 when no value exceeds it (16-bit PNGs read by older
    Pillow), else by 2**32 - 1; floats from 0..1 or 0..255. Other ranges are refused."""
    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    pixels = np.asarray(img).astype(np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    if img.mode == "F":
        if not (np.isfinite(pixels).all() and low >= 0 and high <= 255):
            raise UnreadableImage(f"floating-point values from {low:g} to {high:g} (cnnkit reads 0..1 or 0..255); convert it to 8-bit")
        full = 1.0 if high <= 1.0 else 255.0
    elif low < 0:
        raise UnreadableImage(f"negative pixel values (down to {low:g}); convert it to 8-bit")
    else:
        full = 65535.0 if img.mode.startswith("I;16") or high <= 65535 else 2.0**32 - 1
    return _pil().fromarray(np.round(pixels * (255.0 / full)).astype(np.uint8), "L")
