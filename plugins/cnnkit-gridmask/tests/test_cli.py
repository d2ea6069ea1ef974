"""gridmask through the installed ``cnnkit``: listed, trained with on the fast batched path and on
the per-sample path, previewed, and its arguments checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cnnkit_gridmask import mask
from PIL import Image


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """(images, drawn from a run's generator) for every batch of masks drawn."""
    seen: list[tuple[int, bool]] = []
    real = mask.GridMask.draw

    def spy(self: mask.GridMask, count: int, height: int, width: int, generator: Any, device: Any) -> mask.Draws:
        seen.append((count, generator is not None))
        return real(self, count, height, width, generator, device)

    monkeypatch.setattr(mask.GridMask, "draw", spy)
    return seen


def train(cnnkit: Callable[..., Any], out: Path, spec: str) -> dict[str, Any]:
    """One epoch on 40 images in 4 batches of 8 (training) and 2 of 8 (validation)."""
    rng = np.random.default_rng(0)
    for name, shade in (("dark", 40), ("light", 210)):
        (out / "data" / name).mkdir(parents=True)
        for i in range(20):
            pixels = np.clip(shade + rng.normal(0, 20, (16, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(out / "data" / name / f"{i}.png")
    result = cnnkit("train", "--data", str(out / "data"), "--augment", spec, "--epochs", "1", "--batch-size", "8",
                    "--out", str(out / "runs"), "--name", "run", "--quiet")
    assert result.code == 0, result.err
    return json.loads((out / "runs" / "run" / "config.json").read_text())  # type: ignore[no-any-return]


def test_listed_with_its_parameters(cnnkit):
    line = next(line for line in cnnkit("augmentations").out.splitlines() if line.startswith("gridmask"))
    assert "Chen et al. 2020" in line and "ratio=0.6" in line


def test_with_batched_operations_only_it_runs_on_whole_batches(cnnkit, tmp_path, draws):
    config = train(cnnkit, tmp_path, "gridmask(p=1.0), hflip")
    assert config["augment"] == "gridmask(p=1.0), hflip"
    assert draws == [(2, True)] + [(8, True)] * 4  # cnnkit's dry run on 2 blank images, then 4 batches


def test_next_to_a_per_sample_only_operation_it_runs_per_image(cnnkit, tmp_path, draws):
    train(cnnkit, tmp_path, "rotation(10), gridmask(d=(0.3, 0.6), ratio=0.5)")
    assert draws == [(1, False)] * (1 + 32)  # cnnkit's dry run, then each training image


def test_preview_shows_the_dropped_squares(cnnkit, tmp_path):
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "gray.png")
    out = tmp_path / "preview.png"
    result = cnnkit("augment", "preview", "--augment", "gridmask(p=1.0, rotate=0)", "--image", str(tmp_path / "gray.png"),
                    "--size", "64", "--grid", "3x1", "--out", str(out))
    assert result.code == 0, result.err
    sheet = np.asarray(Image.open(out).convert("L"))
    cells = [sheet[44:196, c * 160 + 4: c * 160 + 156] for c in range(3)]
    assert (cells[0] == 128).all(), "the original is untouched"
    for cell in cells[1:]:
        share = (cell == 0).mean()
        assert 0.05 < share < 0.5 and ((cell == 0) | (cell == 128)).all()


def test_bad_arguments_are_usage_errors_naming_the_range(cnnkit):
    result = cnnkit("augment", "preview", "--augment", "gridmask(ratio=1.5)")
    assert result.code == 2
    assert "gridmask: ratio must be in 0..1, got 1.5" in result.err
    assert cnnkit("augment", "preview", "--augment", "gridmask(dd=0.5)").err.count("Did you mean 'd'") == 1


def test_batched_masks_follow_the_device_of_the_images():
    function = mask.batched_gridmask(p=1.0)
    images = torch.rand(4, 3, 20, 20)
    out, targets = function(images, torch.eye(4), torch.Generator().manual_seed(0))
    assert out.device == images.device and out.dtype == images.dtype and torch.equal(targets, torch.eye(4))
