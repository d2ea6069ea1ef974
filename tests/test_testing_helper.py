"""``cnnkit.testing``, the public helpers a plugin's tests use: an isolated plugin host, the CLI
in-process, tiny image data (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

import cnnkit.plugins
from cnnkit import hookimpl
from cnnkit.errors import PluginError
from cnnkit.testing import CliResult, plugin_host, run_cli, tiny_image_folder

INSTALLED = """
from cnnkit import hookimpl

@hookimpl
def register_models(register):
    register("installed-net", "torch.nn:Identity", input_size=(1, 8, 8))
"""


def plugin_module(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(hooks)
    return module


@hookimpl
def register_tiny(register):
    register("tiny-net", "torch.nn:Identity", help="a tiny net", input_size=(1, 8, 8))


def test_importing_it_imports_no_torch():
    code = "import sys, cnnkit.testing; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_plugin_host_has_the_builtins_and_the_given_plugins_only(install_plugin):
    install_plugin("cnnkit-installed", INSTALLED, entry_point="installed")
    mine = plugin_module("my_plugin", register_models=register_tiny, __version__="2.5")
    host = plugin_host(mine)
    models = host.registry("models")
    assert models.get("tiny-net").plugin == "my_plugin" and models.get("tiny-net").help == "a tiny net"
    assert "mnist-cnn" in models and "installed-net" not in models
    assert [info.name for info in host.plugins.values() if not info.builtin] == ["my_plugin"]
    assert host.plugins["my_plugin"].version == "2.5"

    both = plugin_host(mine, third_party=True).registry("models")
    assert both.get("installed-net").plugin == "installed" and "tiny-net" in both


def test_a_plugin_that_is_installed_keeps_its_entry_point_name_and_loads_once(install_plugin):
    install_plugin("cnnkit-installed", INSTALLED, entry_point="installed")
    import cnnkit_installed

    for third_party in (False, True):
        host = plugin_host(cnnkit_installed, third_party=third_party)
        assert host.registry("models").get("installed-net").plugin == "installed"
        assert host.plugins["installed"].distribution == "cnnkit-installed"
        assert not any(info.errors for info in host.plugins.values())


def test_plugin_host_is_strict_unless_told_otherwise():
    @hookimpl
    def register_models(register):
        register("bad-net", "torch.nn:Identity", input_sise=(1, 8, 8))

    broken = plugin_module("broken_plugin", register_models=register_models)
    with pytest.raises(PluginError, match="unknown metadata 'input_sise' for model 'bad-net' \\(did you mean 'input_size'"):
        plugin_host(broken).registry("models")
    host = plugin_host(broken, strict=False)
    assert "bad-net" not in host.registry("models")
    assert "unknown metadata 'input_sise'" in host.plugins["broken_plugin"].errors[0]


def test_plugin_host_refuses_the_same_plugin_twice():
    mine = plugin_module("my_plugin", register_models=register_tiny)
    with pytest.raises(ValueError, match="the same plugin twice"):
        plugin_host(mine, mine)


def test_run_cli_runs_the_real_command_with_the_given_plugins(monkeypatch):
    monkeypatch.delenv("CNNKIT_PLUGINS", raising=False)
    mine = plugin_module("my_plugin", register_models=register_tiny)
    result = run_cli("models", "tiny*", plugins=[mine])
    assert isinstance(result, CliResult)
    code, out, err = result
    assert (code, err) == (0, "")
    assert out.split("\n")[1].split() == ["tiny-net", "my_plugin", "a", "tiny", "net"]
    assert run_cli("models", "tiny*").out == "No models match 'tiny*'.\n"  # without plugins=: installed ones only
    assert cnnkit.plugins._host is None  # forgotten afterwards


def test_run_cli_sets_the_environment_for_the_call_only(monkeypatch):
    monkeypatch.setenv("CNNKIT_DEBUG", "1")
    monkeypatch.delenv("CNNKIT_PLUGINS", raising=False)
    result = run_cli("plugins", env={"CNNKIT_PLUGINS": "no-such-plugin", "CNNKIT_DEBUG": None})
    assert result.code == 0
    assert "CNNKIT_PLUGINS names 'no-such-plugin', which is not an installed plugin" in result.err
    assert os.environ["CNNKIT_DEBUG"] == "1" and "CNNKIT_PLUGINS" not in os.environ


def test_run_cli_reports_usage_errors_with_their_exit_code():
    code, out, err = run_cli("train", "--epochs", "ten")
    assert (code, out) == (2, "")
    assert err.startswith("Error: Invalid value for '--epochs': 'ten' is not a whole number at least 1.")
    assert err.count("\n") == 1


def test_tiny_image_folder_is_a_small_learnable_image_folder(tmp_path):
    root = tiny_image_folder(tmp_path / "data", classes=3, per_class=4, size=10)
    assert root == tmp_path / "data"
    assert sorted(p.name for p in root.iterdir()) == ["class0", "class1", "class2"]
    means = []
    for folder in sorted(root.iterdir()):
        files = sorted(folder.iterdir())
        assert [f.name for f in files] == [f"img{i:03d}.png" for i in range(4)]
        images = [Image.open(f) for f in files]
        assert {(image.mode, image.size) for image in images} == {("RGB", (10, 10))}
        means.append(np.mean([np.asarray(image, dtype=float).mean((0, 1)) for image in images], axis=0))
    distances = [np.abs(means[a] - means[b]).max() for a in range(3) for b in range(a + 1, 3)]
    assert min(distances) > 60  # each class its own colour, far apart next to the noise (std 12)

    gray = tiny_image_folder(tmp_path / "gray", classes=2, per_class=1, channels=1)
    assert Image.open(gray / "class1" / "img000.png").mode == "L"
    again = tiny_image_folder(tmp_path / "again", classes=3, per_class=4, size=10)
    assert (again / "class2" / "img003.png").read_bytes() == (root / "class2" / "img003.png").read_bytes()


def test_tiny_image_folder_trains(tmp_path):
    data = tiny_image_folder(tmp_path / "data", classes=2, per_class=6, size=12)
    result = run_cli("data", "check", str(data))
    assert result.code == 0, result.err
    assert "class0" in result.out and "class1" in result.out and "trainable" in result.out
