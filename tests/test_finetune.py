"""``cnnkit finetune``: pretrained weights from prepared caches (offline), heads, freezing,
thawing, learning-rate groups, and transfer that beats training from scratch."""

import pytest
import torch
from PIL import Image

from cnnkit.engine.checkpoint import load_checkpoint

MARK = 0.125


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A TORCH_HOME whose hub cache holds resnet18's and squeezenet1_1's default weights files
    (random weights under the exact names torchvision expects, one bias set to a mark)."""
    from torchvision.models import get_model

    home = tmp_path / "torch-home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    for name, file in (("resnet18", "resnet18-f37072fd.pth"), ("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth")):
        torch.manual_seed(0)
        state = get_model(name, weights=None).state_dict()
        first_bias = next(k for k in state if k.endswith("bias"))
        state[first_bias] = torch.full_like(state[first_bias], MARK)
        torch.save(state, home / "hub" / "checkpoints" / file)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


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


def test_torchvision_weights_load_from_the_hub_cache_and_frozen_parts_stay_bitwise(run_cli, torch_home, image_folder, tmp_path):
    from torchvision.models import get_model

    best, last, result = finetune(run_cli, tmp_path / "runs", "tv", "--backbone", "resnet18", "--data", str(image_folder),
                                  "--image-size", "32", "--epochs", "2", "--augment", "hflip", "--init", "he-normal")
    pretrained = torch.load(torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth", weights_only=True)
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


def test_cached_features_train_the_same_head_as_the_full_forward(run_cli, torch_home, image_folder, tmp_path, monkeypatch):
    args = ("--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32", "--epochs", "3", "--precision", "fp32")
    cached = finetune(run_cli, tmp_path / "runs", "cached", *args)
    monkeypatch.setattr("cnnkit.transfer.features.can_cache", lambda run: "switched off by the test")
    full = finetune(run_cli, tmp_path / "runs", "full", *args)
    for a, b in zip(cached[1]["history"], full[1]["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4) and a["val_acc"] == b["val_acc"]
    assert "computed once" in cached[2].err


def test_a_convolution_head_is_replaced_and_freeze_n_freezes_the_first_stages(run_cli, torch_home, image_folder, tmp_path):
    pretrained = torch.load(torch_home / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth", weights_only=True)
    _, last, _ = finetune(run_cli, tmp_path / "runs", "sq", "--backbone", "squeezenet1_1", "--data", str(image_folder),
                          "--image-size", "64", "--epochs", "1", "--freeze", "3", "--lr", "0.05")
    state = last["state_dict"]
    assert state["classifier.1.weight"].shape == (2, 512, 1, 1)
    assert torch.equal(state["features.0.weight"], pretrained["features.0.weight"])  # stage 1
    assert torch.equal(state["features.4.squeeze.weight"], pretrained["features.4.squeeze.weight"])  # stage 3
    assert not torch.equal(state["features.12.expand3x3.weight"], pretrained["features.12.expand3x3.weight"])


def test_unfreeze_at_thaws_at_that_epoch_and_survives_a_resume(run_cli, torch_home, image_folder, tmp_path):
    args = ("--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32", "--unfreeze-at", "2",
            "--backbone-lr-mult", "0.5", "--lr", "0.01")
    pretrained = torch.load(torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth", weights_only=True)
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
    from cnnkit.config import TrainConfig
    from cnnkit.engine.run import train
    from cnnkit.errors import UsageError

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


def test_freeze_auto_prints_its_decision(run_cli, torch_home, image_folder, tmp_path):
    result = run_cli("finetune", "--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32",
                     "--epochs", "1", "--freeze", "auto", "--different", "--out", str(tmp_path / "runs"))
    assert result.code == 0, result.err
    assert ("--freeze auto: 24 training images is small (under 5000 is small) and the data looks different (--different): "
            "freeze the first 3 of 10 stages (--freeze 3).") in result.err
    probe = run_cli("finetune", "--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32",
                    "--epochs", "1", "--freeze", "auto", "--out", str(tmp_path / "runs"))
    assert probe.code == 0 and "a linear probe on the frozen features scores" in probe.err


def test_a_vits_own_parameters_freeze_too_and_timm_replaces_its_head(run_cli, image_folder, tmp_path):
    import timm

    _, last, result = finetune(run_cli, tmp_path / "runs", "vit", "--backbone", "timm/test_vit.r160_in1k", "--no-pretrained",
                               "--freeze", "features", "--data", str(image_folder), "--epochs", "1", "--lr", "0.1")
    model = timm.create_model("test_vit.r160_in1k", num_classes=2)
    model.load_state_dict(last["state_dict"])  # rebuilt by name: head(s) in the right place
    assert "computed once" in result.err, "only the head trains, so features are cached"
    import json

    summary = json.loads(run_cli("summary", "--backbone", "timm/test_vit.r160_in1k", "--freeze", "1", "--json").out)
    own = sum(p.numel() for p in model.parameters(recurse=False))  # class token and position embedding
    assert own > 0 and summary["trainable_params"] == summary["params"] - own, "--freeze 1 freezes the model's own parameters"


def test_init_bias_fills_only_the_new_head(run_cli, torch_home, image_folder, tmp_path):
    _, last, _ = finetune(run_cli, tmp_path / "runs", "bias", "--backbone", "squeezenet1_1", "--data", str(image_folder),
                          "--image-size", "64", "--epochs", "1", "--init-bias", "0.5", "--freeze", "none", "--lr", "1e-9")
    filled = [k for k, v in last["state_dict"].items() if k.endswith(".bias") and v.numel() > 1 and torch.allclose(v, torch.full_like(v, 0.5), atol=1e-6)]
    assert filled == ["classifier.1.bias"]


def test_resume_needs_no_backbone_and_ddp_refuses_unfreeze_at(run_cli, torch_home, image_folder, tmp_path):
    finetune(run_cli, tmp_path / "runs", "r", "--backbone", "resnet18", "--data", str(image_folder), "--image-size", "32", "--epochs", "1")
    resumed = run_cli("finetune", "--resume", str(tmp_path / "runs" / "r"), "--epochs", "2", "--quiet")
    assert resumed.code == 0, resumed.err
    ddp = run_cli("finetune", "--backbone", "resnet18", "--data", str(image_folder), "--strategy", "ddp", "--unfreeze-at", "2",
                  "--out", str(tmp_path / "runs"))
    assert ddp.code == 2 and "--unfreeze-at does not work with --strategy ddp" in ddp.err
