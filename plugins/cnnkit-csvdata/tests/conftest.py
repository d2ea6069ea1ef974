"""Run the installed ``cnnkit`` in-process, and write Kaggle-style datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.testing import CliResult, run_cli


@pytest.fixture
def cnnkit() -> Callable[..., CliResult]:
    """The installed ``cnnkit`` in-process, plugins loaded afresh for each call."""
    return run_cli


SHADES = {"dark": 30, "mid": 128, "light": 225}


def write_kaggle(folder: Path, per_class: int = 12, images: str = "train", header: str = "id,label",
                 extension: str = ".png", ids_only: bool = True, shades: dict[str, int] | None = None) -> Path:
    """A Kaggle-style dataset: ``labels.csv`` (ids without extension by default) and noisy gray
    squares of one shade per class in ``folder/images``."""
    rng = np.random.default_rng(0)
    target = folder / images
    target.mkdir(parents=True, exist_ok=True)
    lines = [header] if header else []
    for label, shade in (shades or SHADES).items():
        for i in range(per_class):
            name = f"{label[:1]}{i:03d}"
            pixels = np.clip(shade + rng.normal(0, 15, (12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(target / f"{name}{extension}")
            lines.append(f"{name if ids_only else name + extension},{label}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def kaggle(tmp_path: Path) -> Path:
    return write_kaggle(tmp_path / "kaggle")


@pytest.fixture
def make_kaggle() -> Callable[..., Path]:
    return write_kaggle


@pytest.fixture
def shades() -> dict[str, int]:
    return dict(SHADES)
