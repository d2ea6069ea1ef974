import importlib.metadata

import cnnkit_lenet5
import torch
from cnnkit_lenet5.model import LeNet5
from torch import nn


def test_architecture_follows_lecun_1998():
    model = LeNet5(num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(6, (5, 5)), (16, (5, 5)), (120, (5, 5))]
    assert sum(isinstance(m, nn.AvgPool2d) for m in model.modules()) == 2
    assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in model.modules())
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 4
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [84, 10]


def test_maps_32x32_images_to_class_scores():
    model = LeNet5(num_classes=7, in_channels=3)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_cnnkit_builds_the_model_the_entry_point_advertises():
    from cnnkit.plugins import PluginHost

    host = PluginHost(strict=True)
    entry = host.registry("models").get("lenet5")
    assert (entry.plugin, entry.metadata["input_size"]) == ("lenet5", (1, 32, 32))
    assert isinstance(entry.create(num_classes=10, in_channels=1), LeNet5)
    assert host.plugins["lenet5"].api == cnnkit_lenet5.CNNKIT_API


def test_registering_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, cnnkit_lenet5; cnnkit_lenet5.register_models(register=lambda *a, **k: None); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_entry_point_is_installed_in_the_cnnkit_group():
    entry_points = importlib.metadata.entry_points(group="cnnkit")
    assert any(ep.name == "lenet5" and ep.value == "cnnkit_lenet5" for ep in entry_points)
