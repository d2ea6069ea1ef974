"""``cnnkit finetune``: pretrained weights from prepared caches (offline, checked against their
hashes), heads, freezing, thawing, learning-rate groups, and transfer that beats training from
scratch; cached features that keep the dropout in front of the head, ``--freeze auto`` as the
four-quadrant rule says, contradictory options refused, and resumes that need no pretrained file."""

import hashlib
import os
import shutil

import pytest
import torch
from PIL import Image

from cnnkit.engine.checkpoint import load_checkpoint

MARK = 0.125


def plant_torchvision(home, name, monkeypatch, state=None, weights="DEFAULT"):
    """``state`` (default: random weights, one bias set to MARK) in the hub cache of ``home`` under
    torchvision's naming, ``name-<first 8 hex digits of its sha256>.pth``, with the weights' URL
    pointing at that name, as torchvision's own files are named and checked. Returns the file."""
    import hashlib

    from torchvision.models import get_model, get_model_weights

    if state is None:
        torch.manual_seed(0)
        state = get_model(name, weights=None).state_dict()
        first_bias = next(k for k in state if k.endswith("bias"))
        state[first_bias] = torch.full_like(state[first_bias], MARK)
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f"{name}.staging"
    torch.save(state, staging)
    file = folder / f"{name}-{hashlib.sha256(staging.read_bytes()).hexdigest()[:8]}.pth"
    staging.rename(file)
    enum = get_model_weights(name)
    member = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    monkeypatch.setattr(member.value, "url", f"https://download.pytorch.org/models/{file.name}")
    return file


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A TORCH_HOME whose hub cache holds resnet18's and squeezenet1_1's default weights files
    (random weights, one bias set to a mark, named by their own hash as torchvision names its files)."""
    home = tmp_path / "torch-home"
    files = {name: plant_torchvision(home, name, monkeypatch) for name in ("resnet18", "squeezenet1_1")}
    monkeypatch.setenv("TORCH_HOME", str(home))
    return files


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """A Hugging Face cache holding timm's test_resnet.r160_in1k as safetensors, offline."""
    import timm
    from safetensors.torch import save_file

    model = timm.create_model("test_resnet.r160_in1k", pretrained=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    stem = next(k for k in state if state[k].ndim == 4)
    state[stem] = torch.full_like(state[stem], MARK)
    repo = tmp_path / "hf" / "hub" / "models--timm--test_resnet.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    save_file(state, repo / "snapshots" / "0123abcd" / "model.safetensors")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    return stem


def finetune(run_cli, out, name, *args):
    result = run_cli("finetune", *args, "--out", str(out), "--name", name, "--quiet")
    assert result.code == 0, result.err
    return load_checkpoint(out / name / "best.pt"), load_checkpoint(out / name / "last.pt"), result


@pytest.mark.slow
def test_torchvision_weights_load_from_the_hub_cache_and_frozen_parts_stay_bitwise(run_cli, torch_home, image_folder, tmp_path):
    from torchvision.models import get_model

    best, last, result = finetune(run_cli, tmp_path / "runs", "tv", "--backbone", "resnet18", "--data", str(image_folder),
                                  "--image-size", "32", "--epochs", "2", "--augment", "hflip", "--init", "he-normal")
    pretrained = torch.load(torch_home["resnet18"], weights_only=True)
    state = last["state_dict"]
    assert torch.equal(state["bn1.bias"], torch.full((64,), MARK)), "the cached file's weights were loaded"
    for key, value in pretrained.items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], value), f"{key} changed (parameters and batch-norm statistics stay frozen)"
    assert state["fc.weight"].shape == (2, 512) and best["classes"] == ["dark", "light"]
    assert best["normalization"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert best["model"]["name"] == "resnet18"
    rebuilt = get_model("resnet18", weights=None, num_classes=2)
    rebuilt.load_state_dict(best["state_dict"])  # evaluate/predict can rebuild it by name
    groups = last["optimizer"]["param_groups"]
    assert sum(len(g["params"]) for g in groups) == 2, "the optimizer holds the new head only"


@pytest.mark.slow
def test_cached_features_train_the_same_head_as_the_full_forward(run_cli, torch_home, image_folder, tmp_path, monkeypatch):
    args = ("--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32", "--epochs", "3", "--precision", "fp32")
    cached = finetune(run_cli, tmp_path / "runs", "cached", *args)
    monkeypatch.setattr("cnnkit.recipe.features.can_cache", lambda *args: "switched off by the test")
    full = finetune(run_cli, tmp_path / "runs", "full", *args)
    for a, b in zip(cached[1]["history"], full[1]["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4) and a["val_acc"] == b["val_acc"]
    assert "computed once" in cached[2].err


@pytest.mark.slow
def test_the_no_cache_note_says_only_what_is_true(run_cli, torch_home, image_folder, tmp_path):
    """hflip(p=0) never changes an image, so "augmentation changes the images every epoch" was false."""
    _, _, result = finetune(run_cli, tmp_path / "runs", "p0", "--backbone", "resnet18", "--data", str(image_folder), *FP32,
                            "--epochs", "1", "--augment", "hflip(p=0)")
    assert "cnnkit: note: features are not cached (with --augment the training images can change from epoch to epoch); " \
           "the frozen backbone runs every epoch." in result.err.splitlines()


def test_a_convolution_head_is_replaced_and_freeze_n_freezes_the_first_stages(run_cli, torch_home, image_folder, tmp_path):
    pretrained = torch.load(torch_home["squeezenet1_1"], weights_only=True)
    _, last, _ = finetune(run_cli, tmp_path / "runs", "sq", "--backbone", "squeezenet1_1", "--data", str(image_folder),
                          "--image-size", "64", "--epochs", "1", "--freeze", "3", "--lr", "0.05")
    state = last["state_dict"]
    assert state["classifier.1.weight"].shape == (2, 512, 1, 1)
    assert torch.equal(state["features.0.weight"], pretrained["features.0.weight"])  # stage 1
    assert torch.equal(state["features.4.squeeze.weight"], pretrained["features.4.squeeze.weight"])  # stage 3
    assert not torch.equal(state["features.12.expand3x3.weight"], pretrained["features.12.expand3x3.weight"])


@pytest.mark.slow
def test_unfreeze_at_thaws_at_that_epoch_and_survives_a_resume(run_cli, torch_home, image_folder, tmp_path):
    args = ("--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32", "--unfreeze-at", "2",
            "--backbone-lr-mult", "0.5", "--lr", "0.01")
    pretrained = torch.load(torch_home["resnet18"], weights_only=True)
    _, one, _ = finetune(run_cli, tmp_path / "runs", "staged", *args, "--epochs", "1")
    assert torch.equal(one["state_dict"]["layer1.0.conv1.weight"], pretrained["layer1.0.conv1.weight"]), "frozen in epoch 1"
    lrs = sorted({g["lr"] for g in one["optimizer"]["param_groups"]})
    assert lrs == [pytest.approx(0.005), pytest.approx(0.01)], "the backbone's groups are at lr x 0.5"
    resumed = run_cli("finetune", *args, "--epochs", "3", "--resume", str(tmp_path / "runs" / "staged"), "--quiet")
    assert resumed.code == 0, resumed.err
    _, straight, _ = finetune(run_cli, tmp_path / "runs", "straight", *args, "--epochs", "3")
    after = load_checkpoint(tmp_path / "runs" / "staged" / "last.pt")
    assert not torch.equal(after["state_dict"]["layer1.0.conv1.weight"], pretrained["layer1.0.conv1.weight"]), "thawed"
    assert [row["val_loss"] for row in after["history"]] == [row["val_loss"] for row in straight["history"]]


def test_timm_weights_load_from_the_hugging_face_cache_offline(run_cli, hf_home, image_folder, tmp_path):
    best, last, _ = finetune(run_cli, tmp_path / "runs", "timm", "--backbone", "timm/test_resnet.r160_in1k",
                             "--data", str(image_folder), "--image-size", "32", "--epochs", "1")
    stem = last["state_dict"][hf_home]
    assert torch.equal(stem, torch.full_like(stem, MARK)), "the cached safetensors were loaded, and stay frozen"
    assert best["normalization"] == {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def test_missing_weights_give_one_line_naming_the_file_and_the_cache(run_cli, tmp_path, image_folder, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    import torchvision.models as tvm

    url = tvm.ResNet18_Weights.IMAGENET1K_V1.url
    monkeypatch.setattr(tvm.ResNet18_Weights.IMAGENET1K_V1.value, "url", url.replace("https://download.pytorch.org", "http://127.0.0.1:9"))
    result = run_cli("finetune", "--backbone", "resnet18", "--data", str(image_folder), "--out", str(tmp_path / "runs"))
    assert result.code == 1
    [error] = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert "resnet18-f37072fd.pth" in error and str(tmp_path / "empty" / "hub" / "checkpoints") in error
    assert "--weights FILE, or --no-pretrained" in error and "Traceback" not in result.err

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "no-hf"))
    result = run_cli("finetune", "--backbone", "timm/test_resnet.r160_in1k", "--data", str(image_folder), "--out", str(tmp_path / "runs"))
    assert result.code == 1 and "models--timm--test_resnet.r160_in1k/snapshots/<revision>/model.safetensors" in result.err


def test_a_weights_file_for_another_architecture_lists_the_mismatch(run_cli, tmp_path, image_folder):
    from torchvision.models import get_model

    torch.save(get_model("resnet34", weights=None).state_dict(), tmp_path / "other.pth")
    result = run_cli("finetune", "--backbone", "resnet18", "--weights", str(tmp_path / "other.pth"),
                     "--data", str(image_folder), "--out", str(tmp_path / "runs"))
    assert result.code == 1
    assert "do not fit this model (unexpected layer1.2.conv1.weight" in result.err


@pytest.mark.slow
def test_transfer_beats_training_from_scratch_on_a_small_related_task(run_cli, tmp_path):
    """mnist-cnn trained by 'cnnkit train' on the digits, then fine-tuned with its features frozen
    to tell even from odd digits from 10 images (one of each digit), beats the same network
    trained from scratch on those 10 images for as many epochs, with the same settings."""
    from cnnkit.data.digits import load_digits

    pretrain = run_cli("train", "--epochs", "10", "--out", str(tmp_path / "runs"), "--name", "digits", "--quiet")
    assert pretrain.code == 0, pretrain.err
    data = load_digits()
    for split, part, count in (("train", data.val, 1), ("val", data.test, None)):
        for digit in range(10):
            folder = tmp_path / "parity" / split / ("even" if digit % 2 == 0 else "odd")
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(part.images[part.labels == digit][:count]):
                Image.fromarray(image[0].numpy()).save(folder / f"{digit}-{i}.png")
    common = ("--backbone", str(tmp_path / "runs" / "digits"), "--data", str(tmp_path / "parity"), "--epochs", "20",
              "--optimizer", "adamw", "--lr", "0.002", "--batch-size", "2", "--patience", "0")
    transfer, _, _ = finetune(run_cli, tmp_path / "runs", "transfer", *common)
    scratch, _, _ = finetune(run_cli, tmp_path / "runs", "scratch", *common, "--no-pretrained", "--freeze", "none")
    assert transfer["metrics"]["val_acc"] > scratch["metrics"]["val_acc"] + 0.03, (transfer["metrics"], scratch["metrics"])


def test_finetune_only_options_are_refused_by_train(run_cli, tmp_path):
    config = _toml(tmp_path, 'freeze = "features"')
    result = run_cli("train", "--config", str(config), "--epochs", "1", "--out", str(tmp_path / "runs"))
    assert result.code == 2
    assert result.err.strip() == f"Error: {config}: option 'freeze' applies to 'cnnkit finetune', not 'cnnkit train'."
    from cnnkit.errors import UsageError
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.run import train

    with pytest.raises(UsageError, match="--freeze only apply to fine-tuning"):
        train(TrainConfig(freeze="features", out=str(tmp_path / "runs")))


def _toml(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    return path


def test_summary_shows_what_freeze_leaves_frozen(run_cli):
    import json

    result = run_cli("summary", "--backbone", "resnet18", "--freeze", "2", "--input-size", "3x32x32", "--json")
    assert result.code == 0, result.err
    layers = {layer["name"]: layer["trainable"] for layer in json.loads(result.out)["layers"]}
    assert layers["conv1"] is False and layers["bn1"] is False and layers["layer1.0.conv1"] is True
    assert layers["fc"] is True
    both = run_cli("summary", "--model", "resnet20", "--backbone", "resnet18")
    assert both.code == 2


@pytest.mark.slow
def test_freeze_auto_prints_its_decision(run_cli, torch_home, image_folder, tmp_path):
    result = run_cli("finetune", "--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32",
                     "--epochs", "1", "--freeze", "auto", "--different", "--out", str(tmp_path / "runs"))
    assert result.code == 0, result.err
    assert ("--freeze auto: 24 training images is small (under 5000 is small) and the data looks different (--different); "
            "quadrant small + different: a linear classifier on activations from earlier in the network: the output "
            "of stage 7 of 10 ('layer3.0'), the layers with weights after it removed; only the new head trains.") in result.err
    probe = run_cli("finetune", "--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32",
                    "--epochs", "1", "--freeze", "auto", "--out", str(tmp_path / "runs"))
    assert probe.code == 0 and "a linear probe on the frozen features scores" in probe.err


@pytest.mark.slow
def test_a_vits_own_parameters_freeze_too_and_timm_replaces_its_head(run_cli, image_folder, tmp_path):
    import timm

    torch.save(timm.create_model("test_vit.r160_in1k").state_dict(), tmp_path / "vit.pth")
    _, last, result = finetune(run_cli, tmp_path / "runs", "vit", "--backbone", "timm/test_vit.r160_in1k", "--weights",
                               str(tmp_path / "vit.pth"), "--data", str(image_folder), "--epochs", "1", "--lr", "0.1")
    model = timm.create_model("test_vit.r160_in1k", num_classes=2)
    model.load_state_dict(last["state_dict"])  # rebuilt by name: head(s) in the right place
    assert "computed once" in result.err, "only the head trains, so features are cached"
    import json

    summary = json.loads(run_cli("summary", "--backbone", "timm/test_vit.r160_in1k", "--freeze", "1", "--json").out)
    own = sum(p.numel() for p in model.parameters(recurse=False))  # class token and position embedding
    assert own > 0 and summary["trainable_params"] == summary["params"] - own, "--freeze 1 freezes the model's own parameters"


@pytest.mark.slow
def test_init_bias_fills_only_the_new_head(run_cli, torch_home, image_folder, tmp_path):
    _, last, _ = finetune(run_cli, tmp_path / "runs", "bias", "--backbone", "squeezenet1_1", "--data", str(image_folder),
                          "--image-size", "64", "--epochs", "1", "--init-bias", "0.5", "--freeze", "none", "--lr", "1e-9")
    filled = [k for k, v in last["state_dict"].items() if k.endswith(".bias") and v.numel() > 1 and torch.allclose(v, torch.full_like(v, 0.5), atol=1e-6)]
    assert filled == ["classifier.1.bias"]


@pytest.mark.slow
def test_resume_needs_no_backbone_and_ddp_refuses_unfreeze_at(run_cli, torch_home, image_folder, tmp_path):
    finetune(run_cli, tmp_path / "runs", "r", "--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32", "--epochs", "1")
    resumed = run_cli("finetune", "--resume", str(tmp_path / "runs" / "r"), "--epochs", "2", "--quiet")
    assert resumed.code == 0, resumed.err
    ddp = run_cli("finetune", "--backbone", "resnet18", "--data", str(image_folder), "--strategy", "ddp", "--unfreeze-at", "2",
                  "--out", str(tmp_path / "runs"))
    assert ddp.code == 2 and "--unfreeze-at does not work with --strategy ddp" in ddp.err


# Issue 15: say only what is true.

FP32 = ("--precision", "fp32", "--image-size", "32")


@pytest.fixture
def mobilenet_home(tmp_path, monkeypatch):
    """A TORCH_HOME holding random mobilenet_v3_small weights (its classifier: Linear, Hardswish,
    Dropout(0.2), Linear), batch-norm statistics measured at 32x32, under their own hash."""
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(0)
    model = mobilenet_v3_small()
    for module in model.modules():  # batch-norm statistics of 32x32 images: else the features all but vanish
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    with torch.no_grad():
        model(torch.rand(32, 3, 32, 32))
    home = tmp_path / "mobilenet-home"
    plant_torchvision(home, "mobilenet_v3_small", monkeypatch, model.state_dict())
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def histories(*runs):
    return [[row[key] for row in run[1]["history"] for key in ("train_loss", "val_loss")] for run in runs]


@pytest.mark.slow
def test_cached_features_train_the_head_with_the_dropout_in_front_of_it(run_cli, mobilenet_home, image_folder, tmp_path, monkeypatch):
    """Same seed: caching the features gives the loss trajectory of the full forward pass, dropout
    included (same random draws); caching the head's input, as before, trains without it."""
    args = ("--backbone", "mobilenet_v3_small", "--data", str(image_folder), *FP32, "--epochs", "3", "--batch-size", "8", "--lr", "0.05")
    cached = finetune(run_cli, tmp_path / "runs", "cached", *args)
    assert "epochs train the head on them, from 'classifier.2' on (it behaves differently in training)" in cached[2].err
    with monkeypatch.context() as patch:
        patch.setattr("cnnkit.recipe.features.can_cache", lambda *args: "switched off by the test")
        full = finetune(run_cli, tmp_path / "runs", "full", *args)
    with monkeypatch.context() as patch:  # the head's input cached, as before the fix: no dropout in training
        from cnnkit.transfer.features import Cut, Tail

        patch.setattr("cnnkit.recipe.features.find_cut", lambda model, head, *rest: Cut(head, Tail([model.get_submodule(head)])))
        without = finetune(run_cli, tmp_path / "runs", "without", *args)
    assert "from 'classifier.2' on" not in without[2].err
    same, full_losses, undropped = histories(cached, full, without)
    assert same == pytest.approx(full_losses, rel=1e-5, abs=1e-6)
    assert torch.allclose(cached[1]["state_dict"]["classifier.3.weight"], full[1]["state_dict"]["classifier.3.weight"], rtol=1e-4, atol=1e-5)
    train_gap = max(abs(a - b) for a, b in zip(undropped[::2], full_losses[::2]))
    assert train_gap > 1e-3, "without the dropout the head trains on other inputs"


def test_a_batch_norm_that_trains_in_front_of_the_head_runs_on_the_cached_features(image_folder):
    """The cut is the first module that behaves differently in training, whatever its kind."""
    from torch import nn

    from cnnkit.transfer.features import changes_in_training, find_cut

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(4, affine=False),
                          nn.Dropout(0.0), nn.Linear(4, 2))
    frozen = [("0", model[0])]
    for param in model[0].parameters():
        param.requires_grad_(False)
    cut = find_cut(model, "5", frozen, [3, 8, 8], torch.device("cpu"))
    assert cut.name == "3" and [type(m) for m in cut.tail.layers] == [nn.BatchNorm1d, nn.Dropout, nn.Linear]
    assert not changes_in_training(nn.Dropout(0.0)) and changes_in_training(nn.Dropout(0.1))
    assert torch.equal(model[3].running_mean, torch.zeros(4)), "the checks leave the statistics alone"


def test_dropout_outside_modules_is_not_cached(image_folder):
    """A dropout written as a function call (timm's ResNet with drop_rate) cannot run on cached
    features as a module: the features are not cached, and the note says why."""
    import timm

    from cnnkit.transfer.features import find_cut

    model = timm.create_model("test_resnet.r160_in1k", drop_rate=0.5, num_classes=2)
    frozen = [(name, module) for name, module in model.named_children() if name != "fc"]
    why = find_cut(model, "fc", frozen, [3, 32, 32], torch.device("cpu"))
    assert why == "the network computes something else in training before 'fc' (random or batch-dependent operations outside modules)"
    plain = timm.create_model("test_resnet.r160_in1k", num_classes=2)
    assert find_cut(plain, "fc", [(n, m) for n, m in plain.named_children() if n != "fc"], [3, 32, 32], torch.device("cpu")).name == "fc"


def auto(run_cli, tmp_path, image_folder, name, *args):
    return finetune(run_cli, tmp_path / "runs", name, "--backbone", "resnet18", "--data", str(image_folder), *FP32,
                    "--epochs", "1", "--freeze", "auto", "--lr", "0.01", *args)


def changed(state, pretrained):
    return {key.split(".")[0] for key, value in pretrained.items()
            if key in state and value.is_floating_point() and not torch.equal(state[key], value)}


@pytest.mark.slow
def test_freeze_auto_small_similar_trains_a_linear_classifier_on_the_top_features(run_cli, torch_home, image_folder, tmp_path):
    _, last, result = auto(run_cli, tmp_path, image_folder, "ss", "--similar")
    assert "quadrant small + similar: a linear classifier on the top features: only the new head trains (--freeze features)." in result.err
    pretrained = torch.load(torch_home["resnet18"], weights_only=True)
    assert changed(last["state_dict"], pretrained) == {"fc"} and last["transfer"]["freeze"] == "features"


@pytest.mark.slow
def test_freeze_auto_small_different_trains_a_linear_classifier_on_earlier_activations(run_cli, torch_home, image_folder, tmp_path):
    """The head is a linear classifier on the output of layer3.0 (stage 7 of 10), averaged by the
    network's own pooling: the same as torchvision's resnet18 with the planted weights, read there
    by a hook and averaged; the checkpoint rebuilds by name and its record of the cut."""
    from torchvision.models import resnet18

    from cnnkit.plugins import registry
    from cnnkit.transfer.surgery import as_recorded

    best, last, result = auto(run_cli, tmp_path, image_folder, "sd", "--different")
    assert "quadrant small + different: a linear classifier on activations from earlier in the network: the output of " \
           "stage 7 of 10 ('layer3.0'), the layers with weights after it removed; only the new head trains." in result.err
    state = last["state_dict"]
    assert state["fc.weight"].shape == (2, 256) and not any(k.startswith(("layer3.1", "layer4")) for k in state)
    pretrained = torch.load(torch_home["resnet18"], weights_only=True)
    assert changed(state, pretrained) == {"fc"} and "layer3.0.conv1.weight" in state, "the rest is frozen"

    reference = resnet18()
    reference.load_state_dict(pretrained)
    reference.eval()
    activations = {}
    reference.layer3[0].register_forward_hook(lambda m, i, o: activations.update(out=o))
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        reference(images)
        expected = activations["out"].mean((2, 3)) @ state["fc.weight"].T + state["fc.bias"]
        rebuilt = as_recorded(registry("models").get(best["model"]["name"]).create(**best["model"]["kwargs"]), best)
        rebuilt.load_state_dict(best["state_dict"])
        assert torch.allclose(rebuilt.eval()(images), expected, atol=1e-5), "the checkpoint rebuilds by name and its record"


@pytest.mark.slow
def test_freeze_auto_large_quadrants_fine_tune_everything(run_cli, torch_home, image_folder, tmp_path, monkeypatch):
    monkeypatch.setattr("cnnkit.transfer.auto.SMALL", 10)
    pretrained = torch.load(torch_home["resnet18"], weights_only=True)
    _, similar, result = auto(run_cli, tmp_path, image_folder, "ls", "--similar")
    assert "quadrant large + similar: fine-tune the whole network, the backbone at 0.1 times the head's rate " \
           "(--freeze none --backbone-lr-mult 0.1)." in result.err
    assert {"conv1", "layer1", "layer4", "fc"} <= changed(similar["state_dict"], pretrained)
    rates = sorted({group["lr"] for group in similar["optimizer"]["param_groups"]})
    assert rates == [pytest.approx(0.001), pytest.approx(0.01)]
    _, different, result = auto(run_cli, tmp_path, image_folder, "ld", "--different")
    assert "quadrant large + different: train everything (--freeze none)." in result.err
    assert {"conv1", "layer1", "layer4", "fc"} <= changed(different["state_dict"], pretrained)
    assert [group["lr"] for group in different["optimizer"]["param_groups"]] == pytest.approx([0.01] * 4)


def test_small_different_falls_back_where_the_backbone_cannot_be_cut():
    from torch import nn

    from cnnkit.transfer.surgery import earlier_cut

    two = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    assert earlier_cut(two, ["2"], [3, 8, 8]) == (None, "it has only 1 stage(s)")


@pytest.mark.slow
def test_a_planted_file_at_the_torchvision_cache_path_is_refused(run_cli, image_folder, tmp_path, monkeypatch):
    from torchvision.models import resnet18

    folder = tmp_path / "home" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(resnet18().state_dict(), folder / "resnet18-f37072fd.pth")  # the official name, other content
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    args = ("--data", str(image_folder), *FP32, "--epochs", "1", "--out", str(tmp_path / "runs"))
    result = run_cli("finetune", "--backbone", "resnet18", *args)
    actual = hashlib.sha256((folder / "resnet18-f37072fd.pth").read_bytes()).hexdigest()
    assert result.code == 1 and result.err == (
        f"Error: The cached weights '{folder / 'resnet18-f37072fd.pth'}' are not the published file: their sha256 begins "
        f"{actual[:8]}, their name says f37072fd; delete it to download it again, or pass it with --weights FILE to use it as it is.\n")
    assert run_cli("finetune", "--backbone", "resnet18", "--weights", str(folder / "resnet18-f37072fd.pth"), *args).code == 0


def hub_cache(root, repo, content: bytes, blob: str):
    """A Hugging Face cache entry as huggingface_hub writes one: the file under ``blobs/<blob>``,
    linked from ``snapshots/<revision>/model.safetensors``."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    (folder / "blobs" / blob).write_bytes(content)
    (folder / "snapshots" / "0123abcd").mkdir(parents=True)
    os.symlink(f"../../blobs/{blob}", folder / "snapshots" / "0123abcd" / "model.safetensors")
    return folder / "blobs" / blob


def test_the_hugging_face_cache_is_checked_against_the_hash_it_records(run_cli, image_folder, tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save

    state = {k: v.contiguous() for k, v in timm.create_model("test_resnet.r160_in1k").state_dict().items()}
    stem = next(k for k in state if state[k].ndim == 4)
    state[stem] = torch.full_like(state[stem], MARK)
    content = save(state)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    args = ("--backbone", "timm/test_resnet.r160_in1k", "--data", str(image_folder), "--image-size", "32", "--epochs", "1")

    good = tmp_path / "good"
    hub_cache(good, "timm/test_resnet.r160_in1k", content, hashlib.sha256(content).hexdigest())
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(good))
    _, last, _ = finetune(run_cli, tmp_path / "runs", "good", *args)
    assert torch.equal(last["state_dict"][stem], state[stem])

    bad = tmp_path / "bad"
    blob = hub_cache(bad, "timm/test_resnet.r160_in1k", content, "0" * 64)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(bad))
    result = run_cli("finetune", *args, "--out", str(tmp_path / "runs"))
    assert result.code == 1 and result.err.startswith(f"Error: The cached weights '{blob}' (for '")
    assert "do not have the hash the Hugging Face cache records for them (their name 000000000000..., their content " \
           f"{hashlib.sha256(content).hexdigest()[:12]}...); delete it to download it again, or pass it with --weights FILE" in result.err


@pytest.mark.parametrize("args, message", [
    (("--weights", "w.pth", "--no-pretrained"), "--weights w.pth and --no-pretrained contradict each other"),
    (("--no-pretrained", "--freeze", "features"), "--no-pretrained --freeze features would freeze randomly initialised layers"),
    (("--no-pretrained", "--freeze", "auto"), "--no-pretrained --freeze auto would freeze randomly initialised layers"),
    (("--no-pretrained", "--unfreeze-at", "2"), "--unfreeze-at thaws pretrained layers, but with --no-pretrained nothing is frozen"),
    (("--backbone-lr-mult", "0"), "--backbone-lr-mult 0 would compute the backbone's gradients and never apply them"),
])
def test_contradictory_options_are_refused_before_anything_loads(run_cli, tmp_path, args, message):
    result = run_cli("finetune", "--backbone", "resnet18", "--data", str(tmp_path / "nothing-here"), *args)
    assert result.code == 2 and result.err.startswith(f"Error: {message}") and len(result.err.splitlines()) == 1


@pytest.mark.slow
def test_no_pretrained_with_nothing_frozen_is_accepted(run_cli, image_folder, tmp_path):
    """--freeze 0 freezes nothing, so with --no-pretrained it was refused for a reason it does not
    have ("would freeze randomly initialised layers"); it trains exactly as --freeze none does."""
    args = ("--backbone", "resnet18", "--no-pretrained", "--data", str(image_folder), *FP32, "--epochs", "1")
    _, zero, _ = finetune(run_cli, tmp_path / "runs", "zero", *args, "--freeze", "0")
    _, none, _ = finetune(run_cli, tmp_path / "runs", "none", *args, "--freeze", "none")
    assert zero["transfer"]["freeze"] == "0" and none["transfer"]["freeze"] == "none"
    assert all(torch.equal(zero["state_dict"][k], v) for k, v in none["state_dict"].items())
    assert [row["val_loss"] for row in zero["history"]] == [row["val_loss"] for row in none["history"]]


def test_freeze_0_with_unfreeze_at_is_refused_before_anything_loads(run_cli, tmp_path):
    result = run_cli("finetune", "--backbone", "resnet18", "--data", str(tmp_path / "nothing-here"), "--freeze", "0",
                     "--unfreeze-at", "2")
    assert result.code == 2 and result.err == ("Error: --unfreeze-at needs something frozen first: pass --freeze features "
                                               "or --freeze N.\n")


@pytest.mark.slow
def test_options_without_effect_are_warned_about(run_cli, torch_home, image_folder, tmp_path):
    _, last, result = finetune(run_cli, tmp_path / "runs", "w", "--backbone", "resnet18", "--data", str(image_folder), *FP32,
                               "--epochs", "1", "--backbone-lr-mult", "0.5", "--unfreeze-at", "3")
    assert "cnnkit: warning: --unfreeze-at 3 comes after the last epoch (--epochs 1): nothing thaws in this run " \
           "(a --resume with --epochs 3 or more would thaw it)." in result.err
    _, _, result = finetune(run_cli, tmp_path / "runs", "m", "--backbone", "resnet18", "--data", str(image_folder), *FP32,
                            "--epochs", "1", "--backbone-lr-mult", "0.5")
    assert "cnnkit: warning: --backbone-lr-mult 0.5 has no effect: only the new head trains and nothing thaws; drop it, or " \
           "train backbone layers with --freeze N or --unfreeze-at EPOCH." in result.err


@pytest.mark.slow
def test_a_resume_needs_no_pretrained_file(run_cli, torch_home, image_folder, tmp_path):
    """last.pt holds every weight: with the cache emptied (offline, another machine) a resumed
    run ends where the uninterrupted one does, also for a backbone cut by --freeze auto."""
    for name, extra in (("plain", ("--freeze", "3")), ("cut", ("--freeze", "auto", "--different"))):
        args = ("--backbone", "resnet18", "--data", str(image_folder), *FP32, "--lr", "0.01", *extra)
        _, straight, _ = finetune(run_cli, tmp_path / "runs", f"{name}-straight", *args, "--epochs", "2")
        finetune(run_cli, tmp_path / "runs", name, *args, "--epochs", "1")
        kept = tmp_path / "kept"
        shutil.move(torch_home["resnet18"].parent, kept)
        resumed = run_cli("finetune", "--resume", str(tmp_path / "runs" / name), "--epochs", "2", "--quiet")
        shutil.move(kept, torch_home["resnet18"].parent)
        assert resumed.code == 0, resumed.err
        after = load_checkpoint(tmp_path / "runs" / name / "last.pt")
        assert [row["val_loss"] for row in after["history"]] == [row["val_loss"] for row in straight["history"]], name
        assert all(torch.equal(after["state_dict"][k], v) for k, v in straight["state_dict"].items()), name


@pytest.mark.slow
def test_a_resume_reads_the_images_as_the_run_did(run_cli, image_folder, tmp_path):
    """The backbone's own preprocessing is recorded: a resume does not mistake the evaluation crop
    (0.75 here, from the augmentation) for the backbone's, which would crop the training images too."""
    args = ("--backbone", "resnet18", "--no-pretrained", "--data", str(image_folder), *FP32,
            "--augment", "random-crop(24, padding=0)")
    _, straight, _ = finetune(run_cli, tmp_path / "runs", "straight", *args, "--epochs", "2")
    _, first, _ = finetune(run_cli, tmp_path / "runs", "again", *args, "--epochs", "1")
    assert first["preprocessing"]["crop_fraction"] == 0.75 and first["transfer"]["preprocessing"]["crop_fraction"] == 1.0
    resumed = run_cli("finetune", "--resume", str(tmp_path / "runs" / "again"), "--epochs", "2", "--quiet")
    assert resumed.code == 0, resumed.err
    after = load_checkpoint(tmp_path / "runs" / "again" / "last.pt")
    assert [row["val_loss"] for row in after["history"]] == [row["val_loss"] for row in straight["history"]]


@pytest.mark.slow
def test_a_resume_needs_no_backbone_run_either(run_cli, torch_home, image_folder, tmp_path):
    finetune(run_cli, tmp_path / "runs", "source", "--backbone", "resnet18", "--data", str(image_folder), *FP32, "--epochs", "1")
    args = ("--backbone", str(tmp_path / "runs" / "source"), "--data", str(image_folder), *FP32, "--freeze", "none")
    _, straight, _ = finetune(run_cli, tmp_path / "runs", "straight", *args, "--epochs", "2")
    finetune(run_cli, tmp_path / "runs", "child", *args, "--epochs", "1")
    shutil.rmtree(tmp_path / "runs" / "source")
    resumed = run_cli("finetune", "--resume", str(tmp_path / "runs" / "child"), "--epochs", "2", "--quiet")
    assert resumed.code == 0, resumed.err
    after = load_checkpoint(tmp_path / "runs" / "child" / "last.pt")
    assert [row["val_loss"] for row in after["history"]] == [row["val_loss"] for row in straight["history"]]


@pytest.mark.slow
def test_a_resume_with_the_last_pt_of_another_model_names_the_mismatch(run_cli, torch_home, image_folder, tmp_path):
    common = ("--data", str(image_folder), "--epochs", "1", "--precision", "fp32")
    finetune(run_cli, tmp_path / "runs", "mine", "--backbone", "resnet18", "--image-size", "32", *common)
    finetune(run_cli, tmp_path / "runs", "other", "--backbone", "squeezenet1_1", "--image-size", "64", *common)
    shutil.copy(tmp_path / "runs" / "other" / "last.pt", tmp_path / "runs" / "mine" / "last.pt")
    result = run_cli("finetune", "--resume", str(tmp_path / "runs" / "mine"), "--epochs", "2")
    assert result.code == 1 and result.err == (
        f"Error: '{tmp_path / 'runs' / 'mine' / 'last.pt'}' does not fit this run's model (it holds a squeezenet1_1 model, the "
        "run's config.json names resnet18); put back the run's own last.pt, or start a new run.\n")
