"""Initializers registered with ``needs_batch=True`` are called once as ``fn(model, batch)``, with
the first training batch exactly as the model sees it, and never on resume."""

from __future__ import annotations

import sys

import pytest
import torch

from cnnkit.engine.trainer import Trainer

RECORDER = """
import torch
from cnnkit import hookimpl

CALLS = []


def record():
    def init(model, batch):
        CALLS.append({"batch": batch.clone(), "device": next(model.parameters()).device,
                      "channels_last": batch.is_contiguous(memory_format=torch.channels_last)})

    return init


@hookimpl
def register_initializers(register):
    register("record-batch", record, help="records the batch it is given", needs_batch=True)
"""


@pytest.fixture
def recorder(install_plugin):
    install_plugin("batch-recorder", RECORDER)
    yield lambda: sys.modules["batch_recorder"].CALLS


@pytest.fixture
def first_inputs(monkeypatch):
    """The normalised images of every training batch the trainer feeds the model, in order."""
    seen: list[torch.Tensor] = []
    original = Trainer.train_inputs

    def spy(self, images, labels):
        x, targets = original(self, images, labels)
        seen.append(x.clone())
        return x, targets

    monkeypatch.setattr(Trainer, "train_inputs", spy)
    return seen


@pytest.mark.slow
def test_the_batch_is_the_first_training_batch_normalised_and_channels_last(run_cli, tmp_path, image_folder, recorder, first_inputs):
    result = run_cli("train", "--data", str(image_folder), "--model", "mnist-cnn", "--epochs", "1", "--batch-size", "8",
                     "--init", "record-batch", "--channels-last", "--seed", "7", "--out", str(tmp_path), "--name", "r", "--quiet")
    assert result.code == 0, result.err
    [call] = recorder()
    assert call["batch"].dtype == torch.float32 and call["batch"].shape == (8, 1, 28, 28)
    assert torch.equal(call["batch"], first_inputs[0]), "the batch the trainer trained on first, bit for bit"
    assert call["channels_last"] and call["device"] == torch.device("cpu")
    saved = torch.load(tmp_path / "r" / "last.pt", weights_only=False)
    assert saved["epoch"] == 1

    again = run_cli("train", "--resume", str(tmp_path / "r"), "--epochs", "2", "--quiet")
    assert again.code == 0, again.err
    assert len(recorder()) == 1, "a resumed run loads its weights: the initializer is not called again"


@pytest.mark.slow
def test_another_seed_draws_another_batch(run_cli, tmp_path, image_folder, recorder, first_inputs):
    for seed in ("1", "2"):
        result = run_cli("train", "--data", str(image_folder), "--model", "mnist-cnn", "--epochs", "1", "--batch-size", "30",
                         "--init", "record-batch", "--seed", seed, "--out", str(tmp_path), "--name", seed, "--quiet")
        assert result.code == 0, result.err
    first, second = recorder()
    assert first["batch"].shape[0] == second["batch"].shape[0] == 24, "min(--batch-size, training images)"
    assert not torch.equal(first["batch"], second["batch"]), "the order comes from the seed"
    assert torch.equal(first["batch"], first_inputs[0]) and torch.equal(second["batch"], first_inputs[1])


def test_fine_tuning_refuses_an_initializer_that_needs_a_batch(run_cli, tmp_path, image_folder, recorder):
    result = run_cli("finetune", "--backbone", "resnet18", "--no-pretrained", "--data", str(image_folder),
                     "--init", "record-batch", "--out", str(tmp_path / "runs"))
    assert result.code == 2
    assert "--init record-batch initialises a network from a batch of training data" in result.err
    assert recorder() == [] and not (tmp_path / "runs").exists()
