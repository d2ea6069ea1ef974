"""Run the installed ``cnnkit`` in-process, and write Kaggle-style datasets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cnnkit(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    from cnnkit.cli import main
    from cnnkit.plugins import reset_host

    def run(*args: str) -> Result:
        reset_host()
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        finally:
            reset_host()
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


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
