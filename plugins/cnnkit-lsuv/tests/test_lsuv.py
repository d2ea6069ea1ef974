"""LSUV against Mishkin & Matas (2016): after it, every conv/linear layer outputs variance 1 on the
batch (within Tol_var = 0.1), each weight is a scaled orthonormal matrix, and it trains."""

from __future__ import annotations

import csv
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cnnkit_lsuv
import pytest
import torch
from cnnkit_lsuv.algorithm import LAYERS, lsuv
from torch import nn


def digits_batch(size: int = 28, count: int = 32) -> torch.Tensor:
    """Real images: the first ``count`` training digits, normalised to mean 0 and std 1."""
    from cnnkit.contracts import DataRequest
    from cnnkit.data.digits import load_digits

    images = load_digits(DataRequest(image_size=(size, size), channels=1)).train.images[:count].float() / 255
    return (images - images.mean()) / images.std()


def build(name: str) -> nn.Module:
    from cnnkit.plugins import registry

    model: nn.Module = registry("models").get(name).create(num_classes=10, in_channels=1)
    return model


def measured_variances(model: nn.Module, batch: torch.Tensor) -> dict[str, float]:
    """Each conv/linear layer's output variance in one pass, measured by hand with hooks (training
    mode, dropout off), read before an in-place ReLU can change the output."""
    found: dict[str, float] = {}

    def hook(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def record(module: nn.Module, args: object, output: torch.Tensor) -> None:
            found.setdefault(name, output.var().item())

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules() if isinstance(module, LAYERS)]
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    with torch.no_grad():
        model(batch)
    for handle in handles:
        handle.remove()
    return found


@pytest.mark.parametrize("name, size", [("mnist-cnn2", 28), ("resnet20", 16)])
def test_every_layer_outputs_unit_variance_on_the_batch(name: str, size: int) -> None:
    torch.manual_seed(0)
    model, batch = build(name), digits_batch(size)
    before = measured_variances(model, batch)
    assert max(abs(v - 1) for v in before.values()) > 0.3, "PyTorch's default init is not already unit variance"

    results = lsuv(model, batch)
    after = measured_variances(model, batch)
    assert len(after) == len(before) == len(results) > 3
    assert [r.name for r in results] == list(after), "layers are taken in the order the forward pass reaches them"
    for result in results:
        assert abs(after[result.name] - 1) < 0.1, (result.name, after[result.name])
        assert after[result.name] == pytest.approx(result.variance, rel=1e-4)


@pytest.mark.parametrize("name", ["mnist-cnn2", "resnet20"])
def test_weights_are_scaled_orthonormal_matrices_and_biases_zero(name: str) -> None:
    torch.manual_seed(1)
    model = build(name)
    lsuv(model, digits_batch(16 if name == "resnet20" else 28))
    for layer_name, layer in model.named_modules():
        if not isinstance(layer, LAYERS):
            continue
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # rows orthogonal when wide, columns when tall
        scale = gram.diagonal().mean()
        assert torch.allclose(gram, scale * torch.eye(len(gram), dtype=gram.dtype), atol=1e-5 * scale.item()), layer_name
        assert layer.bias is None or not layer.bias.any(), layer_name


def test_only_weights_and_biases_change() -> None:
    torch.manual_seed(2)
    model = build("resnet20").eval()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    lsuv(model, digits_batch(16))
    assert not model.training and not any(m.training for m in model.modules()), "modes restored"
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers()), "batch-norm statistics untouched"


def test_the_same_seed_gives_the_same_weights() -> None:
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build("resnet20")
        lsuv(model, digits_batch(16))
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_without_rescaling_the_variances_are_the_orthonormal_ones() -> None:
    """max_iterations bounds the rescalings (T_max); zero leaves the orthonormal pre-initialisation."""
    torch.manual_seed(4)
    model = build("mnist-cnn2")
    results = lsuv(model, digits_batch(), max_iterations=0)
    assert {r.rescalings for r in results} == {0} and any(abs(r.variance - 1) > 0.1 for r in results)


def test_a_batch_that_gives_every_layer_the_same_output_is_refused() -> None:
    with pytest.raises(ValueError, match=r"cannot scale layer '0': its output variance on the batch is 0"):
        lsuv(build("mnist-cnn2"), torch.zeros(4, 1, 28, 28))


def test_the_plugin_registers_lsuv_as_needing_a_batch_without_importing_torch() -> None:
    captured: dict[str, tuple[Callable[[], object], dict[str, object]]] = {}
    cnnkit_lsuv.register_initializers(register=lambda name, factory, **meta: captured.update({name: (factory, meta)}))
    factory, meta = captured["lsuv"]
    assert meta["needs_batch"] is True and callable(factory())
    assert cnnkit_lsuv.CNNKIT_API == ">=1.0,<2"
    code = "import sys, cnnkit_lsuv; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))"
    imported = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(imported.stdout) == []


def test_initializers_lists_lsuv_from_its_installed_plugin(cnnkit: Callable[..., Any]) -> None:
    importlib.metadata.distribution("cnnkit-lsuv")
    result = cnnkit("initializers", "lsuv")
    assert result.code == 0
    assert result.out.splitlines()[1].split()[:2] == ["lsuv", "lsuv"]


@pytest.mark.slow
def test_training_with_lsuv_learns_the_digits(cnnkit: Callable[..., Any], tmp_path: Path) -> None:
    result = cnnkit("train", "--model", "mnist-cnn", "--init", "lsuv", "--epochs", "1", "--precision", "fp32",
                    "--out", str(tmp_path), "--name", "lsuv", "--quiet")
    assert result.code == 0, result.err
    [row] = list(csv.DictReader((tmp_path / "lsuv" / "metrics.csv").open()))
    assert float(row["val_acc"]) > 0.7
