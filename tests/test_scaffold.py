"""``cnnkit plugins new``: every kind is generated, installed (``pip install --target``), listed by
``cnnkit plugins``, used by real commands, passes its own tests and ``mypy --strict`` (issue 16)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnkit.scaffold import KINDS, Names, api_range, names
from cnnkit.testing import run_cli, tiny_image_folder

ROOT = Path(__file__).resolve().parents[1]
BUILD = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
"""Build with this environment's setuptools when it has one (fast, offline); else pip fetches it."""
PREFIX = "cnnkit-made-"
"""Generated distributions are ``cnnkit-made-<kind>``, registering ``made-<kind>``."""


def isolated_env(site: Path) -> dict[str, str]:
    """The environment for a subprocess that sees the generated packages installed in ``site``,
    with no plugin switches of the outer environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CNNKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    return env


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a generated package of every kind, all installed into ``site/`` beside them."""
    parent = tmp_path_factory.mktemp("scaffold")
    for kind in KINDS:
        result = run_cli("plugins", "new", PREFIX + kind, "--kind", kind, "--dir", str(parent))
        assert result.code == 0, result.err
        assert f"the {kind} 'made-{kind}'" in result.out
    folders = [str(parent / (PREFIX + kind)) for kind in KINDS]
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *BUILD, "--target", str(parent / "site"),
               *folders]
    proc = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return parent


def cnnkit(made: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cnnkit", *args], capture_output=True, text=True, cwd=made,
                          env=isolated_env(made / "site"), timeout=300)


@pytest.mark.slow
def test_each_kind_is_a_complete_package(made: Path) -> None:
    for kind in KINDS:
        folder = made / (PREFIX + kind)
        module = f"cnnkit_made_{kind}"
        assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "build" not in p.parts
                and ".egg-info" not in p.parent.name} == {
            "pyproject.toml", "README.md", f"{module}/__init__.py", f"{module}/{KINDS[kind].impl}.py",
            f"{module}/py.typed", f"tests/test_{module}.py"}
        pyproject = (folder / "pyproject.toml").read_text()
        assert f'name = "{PREFIX}{kind}"' in pyproject
        assert f'[project.entry-points.cnnkit]\n"made-{kind}" = "{module}"' in pyproject
        assert f'CNNKIT_API = "{api_range()}"' in (folder / module / "__init__.py").read_text()
        assert "{{" not in pyproject + (folder / "README.md").read_text()


@pytest.mark.slow
def test_cnnkit_lists_every_installed_package(made: Path) -> None:
    proc = cnnkit(made, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = {plugin["name"]: plugin for plugin in json.loads(proc.stdout)}
    for kind in KINDS:
        plugin = listed[f"made-{kind}"]
        noun = "strategies" if kind == "strategy" else f"{kind}s"
        assert (plugin["ok"], plugin["distribution"], plugin["api"]) == (True, PREFIX + kind, api_range()), plugin
        assert plugin["registers"] == {noun: [f"made-{kind}"]}


@pytest.mark.slow
def test_installed_packages_work_in_real_commands(made: Path) -> None:
    """One training run uses the generated model, augmentation, initializer, dataset and strategy."""
    import torch

    proc = cnnkit(made, "train", "--model", "made-model", "--augment", "made-augmentation(amount=0.1)",
                  "--init", "made-initializer", "--data", "made-dataset", "--strategy", "made-strategy",
                  "--device", "cpu", "--epochs", "1", "--quiet", "--out", "runs", "--name", "all")
    assert proc.returncode == 0, proc.stderr
    checkpoint = torch.load(made / "runs" / "all" / "best.pt", map_location="cpu", weights_only=False)
    assert checkpoint["classes"] == ["square", "disc", "cross"]  # the generated dataset
    assert "head.weight" in checkpoint["state_dict"]  # the generated model
    assert {key: checkpoint["config"][key] for key in ("init", "strategy", "augment")} == {
        "init": "made-initializer", "strategy": "made-strategy", "augment": "made-augmentation(amount=0.1)"}

    data = tiny_image_folder(made / "images", classes=2, per_class=3)
    proc = cnnkit(made, "made-command", str(data))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "images: 6"


@pytest.mark.slow
def test_each_generated_package_passes_its_own_tests(made: Path) -> None:
    (made / "pytest.ini").write_text("[pytest]\n")
    tests = [str(made / (PREFIX + kind) / "tests") for kind in KINDS]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                          capture_output=True, text=True, cwd=made, env=isolated_env(made / "site"), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install mypy to check the generated packages)")
@pytest.mark.slow
def test_each_generated_package_passes_mypy_strict(made: Path) -> None:
    config = made / "mypy.ini"
    config.write_text(f"[mypy]\nstrict = True\ncache_dir = {ROOT / '.mypy_cache'}\nmypy_path = {ROOT}\n\n"
                      "[mypy-cnnkit,cnnkit.*]\nfollow_imports = silent\n")
    targets = [str(made / (PREFIX + kind) / part) for kind in KINDS for part in (f"cnnkit_made_{kind}", "tests")]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config), *targets],
                          capture_output=True, text=True, cwd=made, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found in 18 source files" in proc.stdout


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "cnnkit-mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = run_cli("plugins", "new", "cnnkit-mine", "--kind", "model", "--dir", str(tmp_path))
    assert result.code == 2
    assert result.err == f"Error: '{folder}' already exists; cnnkit plugins new never overwrites: choose another name or --dir, or remove it.\n"
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("name, message", [
    ("my plugin", "'my plugin' is not a valid package name"),
    ("mine-", "'mine-' is not a valid package name"),
    ("3d-net", "'3d-net' gives the module name '3d_net', which Python cannot import; start it with a letter"),
    ("cnnkit", "'cnnkit' gives the module name 'cnnkit', which would shadow the module of that name"),
    ("json", "'json' gives the module name 'json', which would shadow the module of that name"),
])
def test_a_bad_name_is_refused_in_one_line(tmp_path: Path, name: str, message: str) -> None:
    result = run_cli("plugins", "new", name, "--kind", "model", "--dir", str(tmp_path))
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(f"Error: {message}") and result.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_bad_kind_or_parent_is_refused(tmp_path: Path) -> None:
    result = run_cli("plugins", "new", "cnnkit-x", "--kind", "modle", "--dir", str(tmp_path))
    assert result.code == 2 and "'modle' is not one of 'model', 'augmentation'" in result.err
    result = run_cli("plugins", "new", "cnnkit-x", "--kind", "model", "--dir", str(tmp_path / "nowhere"))
    assert result.code == 2 and "--dir '" in result.err and "is not a folder" in result.err
    assert list(tmp_path.iterdir()) == []


def test_names_derived_from_the_distribution_name() -> None:
    assert names("cnnkit-Fancy.Net") == Names("cnnkit-Fancy.Net", "cnnkit_fancy_net", "fancy-net", "FancyNet")
    assert names("mynet") == Names("mynet", "mynet", "mynet", "Mynet")
    assert names("cnnkit-3d").cls == "Plugin3d"
