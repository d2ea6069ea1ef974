import importlib.metadata

import torch
from torch import nn

import cnnkit_lenet5
from cnnkit_lenet5.model import LeNet5


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


def test_factory_builds_the_model_the_entry_point_advertises():
    captured = {}
    cnnkit_lenet5.register_models(register=lambda name, factory, **meta: captured.update({name: (factory, meta)}))
    factory, meta = captured["lenet5"]
    assert meta["input_size"] == (1, 32, 32)
    assert isinstance(factory(num_classes=10, in_channels=1), LeNet5)


def test_entry_point_is_installed_in_the_cnnkit_group():
    entry_points = importlib.metadata.entry_points(group="cnnkit")
    assert any(ep.name == "lenet5" and ep.value == "cnnkit_lenet5" for ep in entry_points)
