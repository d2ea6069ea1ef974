"""The architectures cnnkit implements: parameter counts, feature-map sizes, one training step."""

import pytest
import torch
from torch import nn

from cnnkit.plugins import PluginHost

BUILTIN_MODELS = ("mnist-cnn", "mnist-cnn2", "alexnet-2012", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
PAPER_MILLIONS = {"resnet20": 0.27, "resnet32": 0.46, "resnet44": 0.66, "resnet56": 0.85, "resnet110": 1.7}


@pytest.fixture(scope="module")
def models():
    host = PluginHost(entry_points=False, warn=lambda message: None)
    return host.registry("models")


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_parameter_count_is_recorded_and_one_training_step_changes_the_weights(models, name):
    entry = models.get(name)
    classes = 1000 if name == "alexnet-2012" else 10
    channels, height, width = entry.metadata["input_size"]
    torch.manual_seed(0)
    model = entry.create(num_classes=classes, in_channels=channels)
    assert count(model) == entry.metadata["params"]
    if name in PAPER_MILLIONS:
        paper = PAPER_MILLIONS[name]
        assert round(count(model) / 1e6, len(str(paper).split(".")[1])) == paper, "the paper's table, to its precision"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(2, channels, height, width), torch.tensor([0, 1])
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "the step changed the weights"


@pytest.mark.slow
def test_alexnet_2012_feature_maps_match_the_paper():
    from cnnkit.models.alexnet import AlexNet2012

    model = AlexNet2012().eval()
    sizes = {}
    for name, layer in model.features.named_children():
        layer.register_forward_hook(lambda module, args, out, name=name: sizes.__setitem__(name, tuple(out.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, 227, 227))
    assert sizes["conv1"] == (96, 55, 55)
    assert sizes["pool1"][1:] == sizes["conv2"][1:] == (27, 27)
    assert sizes["pool2"][1:] == sizes["conv3"][1:] == sizes["conv5"][1:] == (13, 13)
    assert sizes["pool3"] == (256, 6, 6)


@pytest.mark.slow
def test_alexnet_2012_options_and_initialisation():
    from cnnkit.models.alexnet import AlexNet2012

    lrn = AlexNet2012()
    norms = [m for m in lrn.modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(norms) == 2
    x = torch.rand(1, 7, 2, 2)
    squares = torch.nn.functional.pad(x.pow(2), (0, 0, 0, 0, 2, 2)).unfold(1, 5, 1).sum(-1)
    assert torch.allclose(norms[0](x), x / (2 + 1e-4 * squares) ** 0.75), "the paper's formula, alpha 1e-4"
    names = [name for name, _ in lrn.classifier.named_children()]
    assert names == ["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"], "dropout on the hidden layers' outputs"
    batch = AlexNet2012(norm="batch", dropout=0.3)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in batch.modules()) == 2
    assert {m.p for m in batch.modules() if isinstance(m, nn.Dropout)} == {0.3}
    assert not any(isinstance(m, (nn.LocalResponseNorm, nn.BatchNorm2d)) for m in AlexNet2012(norm="none").modules())
    f, c = lrn.features, lrn.classifier
    assert all(torch.all(layer.bias == 1) for layer in (f.conv2, f.conv4, f.conv5, c.fc6, c.fc7))
    assert all(torch.all(layer.bias == 0) for layer in (f.conv1, f.conv3, c.fc8))
    assert f.conv3.weight.std().item() == pytest.approx(0.01, rel=0.05)
    with pytest.raises(ValueError, match="norm must be one of lrn, batch, none"):
        AlexNet2012(norm="layer")


def test_residual_blocks_and_shortcut_options():
    from cnnkit.models.resnet import BasicBlock, Bottleneck, CifarResNet, PadShortcut

    a, b = CifarResNet(20, shortcut="A"), CifarResNet(20, shortcut="B")
    assert sum(isinstance(m, PadShortcut) for m in a.modules()) == 2, "option A: no parameters where shapes change"
    assert count(b) > count(a)
    x = torch.randn(2, 16, 8, 8)
    assert BasicBlock(16, 32, stride=2, shortcut_kind="A")(x).shape == (2, 32, 4, 4)
    assert Bottleneck(16, 8, stride=2)(x).shape == (2, 32, 4, 4)
    assert CifarResNet(20, block=Bottleneck, shortcut="B")(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"BasicBlocks has 6n \+ 2 layers, not 21"):
        CifarResNet(21)
    assert CifarResNet(29, block=Bottleneck, shortcut="B")(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="shortcut must be 'A'"):
        BasicBlock(16, 32, stride=2, shortcut_kind="C")


VARIANCE = {
    "lecun-normal": lambda fan_in, fan_out: 1 / fan_in,
    "lecun-uniform": lambda fan_in, fan_out: 1 / fan_in,
    "xavier-normal": lambda fan_in, fan_out: 2 / (fan_in + fan_out),
    "xavier-uniform": lambda fan_in, fan_out: 2 / (fan_in + fan_out),
    "he-normal": lambda fan_in, fan_out: 2 / fan_in,
    "he-uniform": lambda fan_in, fan_out: 2 / fan_in,
}


@pytest.mark.parametrize("scheme", sorted(VARIANCE))
def test_initialised_weights_have_the_variance_of_their_formula(scheme):
    from cnnkit.models.init import initializer

    torch.manual_seed(0)
    conv, linear = nn.Conv2d(128, 256, 3), nn.Linear(1024, 512)
    initializer(scheme)(nn.Sequential(conv, linear))
    for layer, fan_in, fan_out in ((conv, 128 * 9, 256 * 9), (linear, 1024, 512)):
        expected = VARIANCE[scheme](fan_in, fan_out)
        assert layer.weight.var().item() == pytest.approx(expected, rel=0.03)
        assert torch.all(layer.bias == 0)
        if scheme.endswith("uniform"):
            assert layer.weight.abs().max().item() <= (3 * expected) ** 0.5 * 1.0001, "uniform bound sqrt(3 var)"


def test_orthogonal_default_batch_norm_and_bias_fill():
    from cnnkit.models.init import fill_biases, initializer

    linear, norm = nn.Linear(64, 64), nn.BatchNorm1d(64)
    nn.init.constant_(norm.weight, 5.0)
    initializer("orthogonal")(nn.Sequential(linear, norm))
    assert torch.allclose(linear.weight @ linear.weight.T, torch.eye(64), atol=1e-5)
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    nn.init.constant_(linear.weight, 7.0)
    initializer("default")(linear)
    assert linear.weight.abs().max().item() <= 1 / 64**0.5, "PyTorch's own bound, 1/sqrt(fan_in)"
    fill_biases(linear, 0.01)
    assert torch.all(linear.bias == 0.01)


def test_init_and_init_bias_are_recorded_in_config_and_checkpoint(run_cli, tmp_path):
    from cnnkit.engine.checkpoint import load_checkpoint

    result = run_cli("train", "--init", "orthogonal", "--init-bias", "0.01", "--epochs", "1",
                     "--out", str(tmp_path), "--name", "i", "--quiet")
    assert result.code == 0, result.err
    config = load_checkpoint(tmp_path / "i" / "last.pt")["config"]
    assert (config["init"], config["init_bias"]) == ("orthogonal", 0.01)


def image_folder(root, size, mode):
    import numpy as np
    from PIL import Image

    for name, value in (("dark", 30), ("light", 220)):
        (root / name).mkdir(parents=True)
        for i in range(5):
            shape = (size, size) if mode == "L" else (size, size, 3)
            Image.fromarray(np.full(shape, value + i, np.uint8), mode).save(root / name / f"{i}.png")
    return root


@pytest.mark.slow
def test_resnet20_trains_on_28x28_grayscale_with_a_one_line_notice_and_on_32x32_rgb_without(run_cli, tmp_path):
    gray = image_folder(tmp_path / "gray", 28, "L")
    result = run_cli("train", "--model", "resnet20", "--data", str(gray), "--epochs", "1", "--batch-size", "4",
                     "--out", str(tmp_path / "runs"), "--quiet")
    assert result.code == 0, result.err
    assert result.err.strip() == (
        "cnnkit: note: resizing 28x28 -> 32x32 and grayscale -> 3 channels for resnet20 (--image-size chooses the size)."
    )
    rgb = image_folder(tmp_path / "rgb", 32, "RGB")
    result = run_cli("train", "--model", "resnet20", "--data", str(rgb), "--epochs", "1", "--batch-size", "4",
                     "--out", str(tmp_path / "runs"), "--quiet")
    assert result.code == 0 and result.err == "", result.err


@pytest.mark.slow
def test_image_size_chooses_the_input_and_is_recorded(run_cli, tmp_path):
    from cnnkit.engine.checkpoint import load_checkpoint

    result = run_cli("train", "--model", "resnet20", "--image-size", "16x24", "--epochs", "1", "--out", str(tmp_path),
                     "--name", "s", "--quiet")
    assert result.code == 0, result.err
    best = load_checkpoint(tmp_path / "s" / "best.pt")
    assert best["input_size"] == [3, 16, 24] and best["config"]["image_size"] == "16x24"


@pytest.mark.parametrize(("name", "params"), [("alexnet", 61_100_840), ("resnet18", 11_689_512), ("vgg16", 138_357_544)])
@pytest.mark.slow
def test_torchvision_models_keep_torchvision_parameter_counts(models, name, params):
    assert models.get(name).metadata["input_size"] == (3, 224, 224)
    assert count(models.get(name).create(num_classes=1000, in_channels=3)) == params


def test_torchvision_names_come_from_torchvision_with_their_input_sizes(models):
    import torchvision.models
    from torchvision.models import list_models

    names = set(models.names())
    assert set(list_models(module=torchvision.models)) <= names
    assert models.get("inception_v3").metadata["input_size"] == (3, 299, 299)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "timm/resnet18", "timm/convnext_atto"])
@pytest.mark.slow
def test_library_models_take_one_grayscale_training_step(models, name):
    torch.manual_seed(0)
    model = models.get(name).create(num_classes=3, in_channels=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = nn.functional.cross_entropy(model(torch.randn(2, 1, 64, 64)), torch.tensor([0, 2]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)


def test_timm_models_are_a_family_listed_only_when_asked(models):
    import timm

    assert "timm/*" in models.names() and "timm/resnet18" not in models.names()
    expected = sorted(set(timm.list_models("convnext_a*")) | set(timm.list_pretrained("convnext_a*")))
    assert models.names("timm/convnext_a*") == ["timm/" + n for n in expected]
    assert "timm/convnext_atto.d2_in1k" in models.names("timm/convnext_a*"), "pretrained tags are members too"
    assert models.get("timm/resnet18").metadata["input_size"] == (3, 224, 224)
    from cnnkit.registry import UnknownNameError

    with pytest.raises(UnknownNameError, match="Did you mean 'timm/resnet18'"):
        models.get("timm/resnet81")
    with pytest.raises(UnknownNameError, match=r"'timm/\*' is a family of models: name one of them"):
        models.get("timm/*")


@pytest.mark.slow
def test_a_timm_model_trains_end_to_end(run_cli, tmp_path):
    result = run_cli("train", "--model", "timm/resnet10t", "--image-size", "32", "--epochs", "1",
                     "--out", str(tmp_path), "--name", "t", "--quiet")
    assert result.code == 0, result.err
    assert "resizing" not in result.err


@pytest.mark.slow
def test_model_kwargs_reach_the_factory_and_the_checkpoint(run_cli, tmp_path):
    from cnnkit.engine.checkpoint import load_checkpoint
    from cnnkit.values import parse_model_kwargs

    assert parse_model_kwargs("norm=batch, dropout=0.3,depth=2,flag=True,extra=None") == {
        "norm": "batch", "dropout": 0.3, "depth": 2, "flag": True, "extra": None}
    result = run_cli("train", "--model", "resnet20", "--model-kwargs", "shortcut=B", "--epochs", "1",
                     "--out", str(tmp_path), "--name", "k", "--quiet")
    assert result.code == 0, result.err
    best = load_checkpoint(tmp_path / "k" / "best.pt")
    assert best["model"]["kwargs"]["shortcut"] == "B"
    assert any(key.endswith("shortcut.0.weight") for key in best["state_dict"]), "projection shortcuts were built"
    bad = run_cli("train", "--model-kwargs", "dropout", "--out", str(tmp_path))
    assert bad.code == 2 and "--model-kwargs 'dropout' must be KEY=VALUE" in bad.err
    reserved = run_cli("train", "--model-kwargs", "num_classes=5", "--out", str(tmp_path))
    assert reserved.code == 2 and "--model-kwargs cannot set num_classes: it comes from the data." in reserved.err
