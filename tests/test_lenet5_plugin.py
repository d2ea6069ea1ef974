"""The separately installed plugin in plugins/cnnkit-lenet5 proves the third-party path."""

import importlib.metadata

import pytest

from cnnkit.engine.checkpoint import load_checkpoint


@pytest.fixture(autouse=True)
def require_plugin():
    try:
        importlib.metadata.distribution("cnnkit-lenet5")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("cnnkit-lenet5 is not installed: pip install -e plugins/cnnkit-lenet5 (make install does)")


def test_models_lists_lenet5_from_its_plugin(run_cli):
    result = run_cli("models", "lenet*")
    assert result.code == 0
    assert result.out.splitlines()[1].split()[:2] == ["lenet5", "lenet5"]


def test_plugins_shows_the_distribution_its_api_range_and_what_it_registers(run_cli):
    assert "lenet5 0.1.0 (cnnkit-lenet5; API >=1.0,<2)\n  models: lenet5\n" in run_cli("plugins").out


@pytest.mark.slow
def test_train_with_lenet5_uses_its_32x32_input(run_cli, tmp_path):
    result = run_cli("train", "--model", "lenet5", "--epochs", "3", "--out", str(tmp_path), "--name", "l5", "--quiet")
    assert result.code == 0, result.err
    best = load_checkpoint(tmp_path / "l5" / "best.pt")
    assert best["model"]["name"] == "lenet5" and best["input_size"] == [1, 32, 32]
    assert best["metrics"]["test"]["acc"] > 0.5
