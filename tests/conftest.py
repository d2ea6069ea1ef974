"""Fixtures shared by the test files: the in-process CLI runner, throwaway plugins, small image folders.

Fast and full test suites
-------------------------
``make test`` (the CI and README command) runs every test; ``make test-fast`` runs
``pytest -m "not slow"``, under a minute on 2 cores, for the edit-and-check loop.
``@pytest.mark.slow`` (or a module's ``pytestmark``) marks the tests that take about half a
second or more there, because they

- start processes: ``python -m cnnkit``, torchrun, DDP workers, mypy, pip, generated packages;
- wait on signals or timeouts: Ctrl-C, SIGTERM, kill -9, a rendezvous no one joins;
- train for several epochs or real-sized models: the default digits run, resume-equals-uninterrupted,
  fine-tuning runs, every augmentation preset, seed reproducibility.

Every area keeps fast tests on tiny models and data, so a fast run still reaches the whole code.
A new test that takes half a second or more gets the marker (``pytest -m "not slow" --durations=20``
lists the slowest). On a busy machine torch's intra-op threads wait on each other and tiny-model
tests take several times longer: ``OMP_NUM_THREADS=1 make test-fast`` keeps near the quiet time
(the fast subset only; the DDP equality test in the full suite expects the default threads).
"""

from __future__ import annotations

import io
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.plugins import reset_host


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run the real ``cnnkit`` entry point in-process, with plugins loaded afresh."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
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


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a throwaway plugin distribution (module + entry point) on ``sys.path``."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    added: list[str] = []

    def install(name: str, source: str, *, entry_point: str | None = None, version: str = "1.0") -> Path:
        module = name.replace("-", "_")
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        dist = site / f"{module}-{version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (dist / "entry_points.txt").write_text(f"[cnnkit]\n{entry_point or name} = {module}\n")
        added.append(module)
        return site

    yield install
    for module in added:
        sys.modules.pop(module, None)


def write_images(folder: Path, count: int, color: tuple[int, int, int], size: int = 12, seed: int = 0) -> None:
    """``count`` noisy RGB squares of one colour: an easy, learnable class."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = np.clip(np.array(color) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"img{i:03d}.png")


@pytest.fixture
def make_images():
    return write_images


def write_broken_files(folder: Path) -> dict[str, str]:
    """Every kind of damaged file, with a fragment of the reason cnnkit gives for it."""
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(good, "PNG")
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    files = {
        "empty.png": (b"", "empty file"),
        "notes.jpg": (b"shopping list: eggs, milk\n", "not an image"),
        "half.png": (good.getvalue()[: len(good.getvalue()) // 2], "truncated"),
        "half.jpg": (jpeg.getvalue()[: len(jpeg.getvalue()) // 2], "truncated"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: why for name, (_, why) in files.items()}


@pytest.fixture
def broken_files():
    return write_broken_files


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """An ImageFolder tree with train/ and val/ splits and two colour classes."""
    root = tmp_path / "shapes"
    for offset, (split, count) in enumerate((("train", 12), ("val", 4))):  # own seeds: no image in both splits
        write_images(root / split / "dark", count, (30, 30, 30), seed=1 + 2 * offset)
        write_images(root / split / "light", count, (220, 220, 220), seed=2 + 2 * offset)
    return root
