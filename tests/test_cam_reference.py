"""``predict --cam``'s HiResCAM against Grad-CAM computed by hand (Selvaraju et al. 2017: channel
weights are the spatial means of the class score's gradient), at the layer pytorch-grad-cam's
documentation names for each network (``model.layer4[-1]`` for a ResNet, ``model.features[-1]``
for VGG, DenseNet, MobileNet, EfficientNet)."""

import pytest
import torch
import torch.nn.functional as F


def grad_cam(model, layer, inputs, classes):
    """Grad-CAM at ``layer``: weights = mean gradient over positions, weighted sum of channels,
    ReLU, scaled up to the image, each map divided by its maximum."""
    seen = {}
    handle = layer.register_forward_hook(lambda module, args, output: seen.__setitem__("a", output))
    scores = model(inputs)
    handle.remove()
    grads = torch.autograd.grad(scores.gather(1, classes[:, None]).sum(), seen["a"])[0]
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * seen["a"]).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return (cam / cam.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]).detach()


def build(name):
    import torchvision.models as tvm

    from cnnkit.plugins import registry

    torch.manual_seed(0)
    if name == "resnet20":
        return registry("models").get(name).create(num_classes=10, in_channels=3).eval(), 32
    return getattr(tvm, name)(num_classes=10).eval(), 64


def reference_layer(model, name):
    return {"resnet18": lambda: model.layer4[-1], "resnet20": lambda: model.stage3[-1],
            "mobilenet_v3_small": lambda: model.features[-1], "densenet121": lambda: model.features[-1]}[name]()


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize(("name", "layer"), [("resnet18", "layer4.1"), ("resnet20", "stage3.2"),
                                             ("mobilenet_v3_small", "features.12"), ("densenet121", "features")])
@pytest.mark.slow
def test_hirescam_equals_grad_cam_for_globally_pooled_networks(name, layer):
    from cnnkit.inference.cam import class_activation, feature_layer

    model, size = build(name)
    inputs = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    classes = model(inputs).argmax(1)  # as predict does: the top class
    assert feature_layer(model, inputs[:1]) == layer
    ours = class_activation(model, inputs, classes)
    reference = grad_cam(model, reference_layer(model, name), inputs, classes)
    assert (reference.flatten(1).max(1).values == 1).sum() >= 3, "the reference maps are not empty"
    assert relative(ours, reference) < 1e-5


@pytest.mark.parametrize(("name", "conv"), [("resnet18", "layer4.1.conv2"), ("resnet20", "stage3.2.conv2")])
def test_the_last_convolution_would_not_equal_grad_cam(name, conv):
    """The layer chosen before: inside the last block, before its batch norm, addition and ReLU."""
    from cnnkit.inference.cam import class_activation

    model, size = build(name)
    inputs = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    classes = model(inputs).argmax(1)
    last_conv = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert last_conv == conv
    old = class_activation(model, inputs, classes, layer=conv)
    assert relative(old, grad_cam(model, reference_layer(model, name), inputs, classes)) > 0.05


def test_for_a_network_that_flattens_the_map_is_the_classifiers_own_split_of_the_score():
    """mnist-cnn flattens its last pooled map into one linear layer, so the class score less its
    bias is sum over channels and positions of W[class] * map: HiResCAM there is exactly that sum
    per position (rectified, scaled up, scaled to 1). At the last convolution it is not."""
    from cnnkit.inference.cam import class_activation, feature_layer
    from cnnkit.plugins import registry

    torch.manual_seed(0)
    model = registry("models").get("mnist-cnn").create(num_classes=10, in_channels=1).eval()
    inputs = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    classes = model(inputs).argmax(1)
    assert feature_layer(model, inputs[:1]) == "5"
    with torch.no_grad():
        pooled = torch.nn.Sequential(*list(model)[:6])(inputs)
        weights = model[7].weight[classes].view(3, *pooled.shape[1:])
        split = F.relu((weights * pooled).sum(1, keepdim=True))
    reference = F.interpolate(split, size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
    reference = reference / reference.flatten(1).max(1).values[:, None, None]
    assert relative(class_activation(model, inputs, classes), reference) < 1e-5
    assert relative(class_activation(model, inputs, classes, layer="3"), reference) > 0.05


@pytest.mark.parametrize(("name", "layer"), [("vgg11", "features"), ("efficientnet_b0", "features.8"), ("alexnet-2012", "features"),
                                             ("timm/resnet10t", "layer4.0"), ("mnist-cnn2", "8")])
@pytest.mark.slow
def test_the_layer_is_the_one_that_feeds_the_classifier(name, layer):
    """VGG and AlexNet: the last max pooling (pytorch-grad-cam's ``features[-1]``), not the
    adaptive pooling after it; timm's ResNet: its last block."""
    import torchvision.models as tvm

    from cnnkit.inference.cam import feature_layer
    from cnnkit.plugins import registry

    if name in ("vgg11", "efficientnet_b0"):
        model, size = getattr(tvm, name)(num_classes=3).eval(), 64
    else:
        model = registry("models").get(name).create(num_classes=3, in_channels=1 if name.startswith("mnist") else 3).eval()
        size = {"alexnet-2012": 227, "mnist-cnn2": 28}.get(name, 64)
    channels = 1 if name.startswith("mnist") else 3
    assert feature_layer(model, torch.zeros(1, channels, size, size)) == layer


def test_a_transformer_is_refused_unless_a_layer_is_named():
    import timm

    from cnnkit.errors import UsageError
    from cnnkit.inference.cam import class_activation

    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=3).eval()
    inputs = torch.randn(1, 3, 32, 32)
    with pytest.raises(UsageError, match="turns its feature maps into tokens"):
        class_activation(model, inputs, torch.tensor([0]))
    assert class_activation(model, inputs, torch.tensor([0]), layer="patch_embed.proj").shape == (1, 32, 32)


def test_cam_layer_is_checked_before_any_image_is_read(run_cli, tmp_path):
    from cnnkit.engine.checkpoint import save_checkpoint
    from cnnkit.plugins import registry

    model = registry("models").get("mnist-cnn").create(num_classes=2, in_channels=1)
    save_checkpoint(tmp_path / "m.pt", {"model": {"name": "mnist-cnn", "kwargs": {"num_classes": 2, "in_channels": 1}},
                                        "classes": ["a", "b"], "input_size": [1, 28, 28],
                                        "normalization": {"mean": [0.5], "std": [0.5]}, "state_dict": model.state_dict()})
    unknown = run_cli("predict", str(tmp_path / "m.pt"), str(tmp_path / "none.png"), "--cam", str(tmp_path / "c"),
                      "--cam-layer", "9")
    assert unknown.code == 2 and unknown.err == ("Error: --cam-layer: Unknown layer '9'. Its layers that give feature maps: "
                                                 "0, 1, 2, 3, 4, 5 (this model's own choice is '5').\n")
    flat = run_cli("predict", str(tmp_path / "m.pt"), str(tmp_path / "none.png"), "--cam", str(tmp_path / "c"),
                   "--cam-layer", "7")
    assert flat.code == 2 and "--cam-layer 7 gives (1, 2), not a feature map" in flat.err
    alone = run_cli("predict", str(tmp_path / "m.pt"), str(tmp_path / "none.png"), "--cam-layer", "3")
    assert alone.code == 2 and "pass --cam FOLDER too" in alone.err
    assert not (tmp_path / "c").exists()


def reference_map_layers(model, sample):
    """The modules whose output is a 4-d map of ``sample``, by plain forward hooks (adaptive
    pooling is the pooling itself, not a layer to take maps at)."""
    from torch import nn

    names = []
    hooks = [module.register_forward_hook(lambda m, a, out, name=name: names.append(name) if out.dim() == 4 else None)
             for name, module in model.named_modules()
             if name and not isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))]
    with torch.no_grad():
        model(sample)
    for hook in hooks:
        hook.remove()
    return list(dict.fromkeys(names))


@pytest.mark.parametrize(("typed", "answer"), [
    ("layer4.2", "Did you mean 'layer4.0' or 'layer4.1' or 'layer2'?"),
    ("linear", ("The 20 nearest in name of its 65 layers that give feature maps: layer1.0.relu, layer1.0, layer1.1.relu, "
                "layer1.1, layer1, layer2.0.relu, layer2.0, layer2.1.relu, layer2.1, layer2, layer3.0.relu, layer3.0, "
                "layer3.1.relu, layer3.1, layer3, layer4.0.relu, layer4.0, layer4.1.relu, layer4.1, layer4 (this model's "
                "own choice is 'layer4.1').")),
])
def test_an_unknown_cam_layer_lists_layers_that_give_feature_maps(typed, answer):
    """The hint used to send the user to 'cnnkit summary' for blocks such as layer4.1, which
    summary does not list (it lists leaf layers only)."""
    import torchvision

    from cnnkit.errors import UsageError
    from cnnkit.inference.cam import cam_layer, map_layers

    model = torchvision.models.resnet18(num_classes=3).eval()
    sample = torch.zeros(1, 3, 64, 64)
    layers = map_layers(model, sample)
    assert layers == reference_map_layers(model, sample) and len(layers) == 65
    with pytest.raises(UsageError) as caught:
        cam_layer(model, sample, typed)
    assert str(caught.value) == f"--cam-layer: Unknown layer '{typed}'. {answer}"
    for listed in ("layer4.1", "layer3", "layer2.0.relu", "conv1"):
        assert cam_layer(model, sample, listed) == listed
