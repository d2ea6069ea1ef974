"""GridMask's masks: the paper's geometry, the dropped share it implies, and the per-sample and
batched versions drawing the same masks from the same seed."""

from __future__ import annotations

import subprocess
import sys

import cnnkit_gridmask
import pytest
import torch
from cnnkit_gridmask.mask import Draws, GridMask, batched_gridmask, dropped, expected_dropped_share, gridmask

from cnnkit.contracts import Reference


def one(unit: int, kept: int, offset_y: int, offset_x: int, angle: float = 0.0) -> Draws:
    def t(value: int) -> torch.Tensor:
        return torch.tensor([value])

    return Draws(torch.tensor([True]), t(unit), t(kept), t(offset_y), t(offset_x), torch.tensor([angle]))


def sample_mask(spec: dict[str, object], seed: int, size: int = 24) -> torch.Tensor:
    torch.manual_seed(seed)
    return gridmask(**spec)(torch.full((3, size, size), 200, dtype=torch.uint8)) == 0  # type: ignore[arg-type]


def batched_mask(spec: dict[str, object], seed: int, count: int = 1, size: int = 24) -> torch.Tensor:
    images = torch.full((count, 3, size, size), 0.8)
    generator = torch.Generator().manual_seed(seed)
    return batched_gridmask(**spec)(images, torch.zeros(count), generator)[0] == 0  # type: ignore[arg-type]


def test_each_unit_keeps_strips_of_ratio_d_and_drops_the_square_between_them():
    # d=5, l=3: rows and columns whose offset position in the unit is 3 or 4 are dropped where they cross
    mask = dropped(one(5, 3, offset_y=1, offset_x=2), 10, 10)[0]
    rows = torch.tensor([y in (0, 4, 5, 9) for y in range(10)])
    columns = torch.tensor([x in (0, 1, 5, 6) for x in range(10)])
    assert torch.equal(mask, rows[:, None] & columns[None, :])


def test_the_kept_share_of_a_unit_is_one_minus_one_minus_r_squared():
    for ratio, unit in ((0.6, 10), (0.4, 20), (0.25, 8)):
        grid = GridMask(d=(unit / 40, unit / 40), ratio=ratio, rotate=0, p=1.0)
        mask = dropped(grid.draw(1, 40, 40, torch.Generator().manual_seed(0), torch.device("cpu")), 40, 40)
        assert mask.float().mean().item() == pytest.approx((1 - ratio) ** 2)
        assert 1 - mask.float().mean().item() == pytest.approx(1 - (1 - ratio) ** 2)


def test_the_unit_side_is_drawn_from_d_times_the_shorter_side():
    grid = GridMask(d=(0.25, 0.5), ratio=0.5, p=1.0)
    draws = grid.draw(2000, 48, 64, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert set(draws.unit.tolist()) == set(range(12, 25))
    assert torch.equal(draws.kept, (draws.unit * 0.5 + 0.5).floor().long())
    assert (draws.offset_y < draws.unit).all() and (draws.offset_x >= 0).all()
    assert draws.angle.min() >= 0 and draws.angle.max() < 360


@pytest.mark.parametrize("spec", [
    {},
    {"d": (0.2, 0.6), "ratio": 0.3, "rotate": 45.0, "p": 1.0},
    {"d": 0.5, "ratio": 0.5, "rotate": 0.0, "p": 0.5},
])
def test_the_same_seed_gives_the_same_mask_per_sample_and_batched(spec):
    for seed in range(20):
        assert torch.equal(sample_mask(spec, seed)[0], batched_mask(spec, seed)[0, 0])


@pytest.mark.parametrize("spec", [
    {"d": (0.43, 1.0), "ratio": 0.6, "rotate": 360.0, "p": 0.8},
    {"d": (0.2, 0.5), "ratio": 0.3, "rotate": 30.0, "p": 1.0},
])
@pytest.mark.slow
def test_both_stages_drop_the_expected_share_of_pixels(spec):
    """Per pixel, P(dropped) = p * mean_d(((d - l) / d) ** 2): about p * (1 - r) ** 2."""
    size = 32
    grid = GridMask(**spec)  # type: ignore[arg-type]
    expected = grid.dropped_share(size, size)
    assert expected == pytest.approx(spec["p"] * (1 - spec["ratio"]) ** 2, abs=0.03)
    per_sample = torch.stack([sample_mask(spec, seed, size)[0] for seed in range(400)]).float()
    batched = batched_mask(spec, 12345, count=2000, size=size)[:, 0].float()
    for masks, count in ((per_sample, 400), (batched, 2000)):
        share = masks.mean(dim=(1, 2))
        tolerance = 4 * share.std().item() / count ** 0.5
        assert share.mean().item() == pytest.approx(expected, abs=tolerance)
        # every place in the picture is as likely to be dropped (no edge is spared)
        assert masks[:, :size // 2, :size // 2].mean().item() == pytest.approx(expected, abs=3 * tolerance)


def test_expected_share_follows_the_rounded_strip_width():
    assert expected_dropped_share((5, 5), 0.5, 1.0) == pytest.approx((2 / 5) ** 2)  # l = int(2.5 + 0.5) = 3
    assert expected_dropped_share((4, 6), 0.5, 0.5) == pytest.approx(0.5 * ((2 / 4) ** 2 + (2 / 5) ** 2 + (3 / 6) ** 2) / 3)


def test_each_image_of_a_batch_gets_its_own_mask_from_the_generator():
    spec = {"p": 1.0}
    masks = batched_mask(spec, 7, count=8)
    assert len({tuple(m.flatten().tolist()) for m in masks[:, 0]}) == 8
    assert torch.equal(masks, batched_mask(spec, 7, count=8))
    assert not torch.equal(masks, batched_mask(spec, 8, count=8))
    assert torch.equal(masks[:, 0], masks[:, 2]), "one mask for every channel"


def test_without_rotation_the_squares_are_axis_aligned_and_with_it_not():
    def aligned(mask: torch.Tensor) -> bool:
        return torch.equal(mask, mask.any(1)[:, None] & mask.any(0)[None, :])

    straight = batched_mask({"p": 1.0, "rotate": 0.0}, 3, count=20, size=40)[:, 0]
    turned = batched_mask({"p": 1.0, "rotate": 360.0}, 3, count=20, size=40)[:, 0]
    assert all(aligned(m) for m in straight)
    assert sum(aligned(m) for m in turned) < 5


def test_p_is_the_share_of_images_masked_and_fill_the_value_of_the_dropped_pixels():
    images = torch.full((1000, 1, 16, 16), 0.3)
    out, _ = batched_gridmask(p=0.25, fill=0.5)(images, torch.zeros(1000), torch.Generator().manual_seed(0))
    touched = (out != 0.3).flatten(1).any(1).float().mean().item()
    assert touched == pytest.approx(0.25, abs=0.05)
    assert out.unique().tolist() == pytest.approx([0.3, 0.5])
    torch.manual_seed(0)
    image = gridmask(p=1.0, fill=1.0)(torch.full((3, 16, 16), 10, dtype=torch.uint8))
    assert image.dtype == torch.uint8 and image.shape == (3, 16, 16)
    assert set(image.unique().tolist()) == {10, 255}


def test_the_hook_registers_a_typed_sample_entry_with_a_batched_version():
    captured: dict[str, tuple[object, dict[str, object]]] = {}

    def register(name: str, factory: object, **metadata: object) -> None:
        captured[name] = (factory, metadata)

    cnnkit_gridmask.register_augmentations(register=register)
    factory, metadata = captured["gridmask"]
    assert metadata["stage"] == "sample"
    assert [p.name for p in metadata["params"]] == ["d", "ratio", "rotate", "p", "fill"]  # type: ignore[attr-defined]
    sample = Reference(str(factory))(p=1.0)
    batched = Reference(str(metadata["batched"]))(p=1.0)
    torch.manual_seed(0)
    one = sample(torch.full((1, 8, 8), 9, dtype=torch.uint8))
    many, _ = batched(torch.full((1, 1, 8, 8), 0.5), torch.zeros(1), torch.Generator().manual_seed(0))
    assert torch.equal(one == 0, many[0] == 0) and (one == 0).any()
    assert cnnkit_gridmask.CNNKIT_API == ">=1.0,<2"


def test_importing_the_plugin_imports_no_torch():
    code = "import sys, cnnkit_gridmask; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
