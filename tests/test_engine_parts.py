import math
import pickle

import pytest
import torch
from torch import nn

from cnnkit.engine.checkpoint import load_checkpoint, save_checkpoint
from cnnkit.engine.early_stopping import EarlyStopping
from cnnkit.engine.metrics import RunningMetrics
from cnnkit.errors import CnnkitError
from cnnkit.models.init import initializer


def test_running_metrics_weight_loss_by_batch_size():
    metrics = RunningMetrics(torch.device("cpu"))
    metrics.update(torch.tensor(1.0), torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1]))
    metrics.update(torch.tensor(4.0), torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
    result = metrics.compute()
    assert result["loss"] == pytest.approx((1.0 * 2 + 4.0) / 3)
    assert result["acc"] == pytest.approx(2 / 3)


def test_early_stopping_counts_epochs_without_improvement():
    stopper = EarlyStopping(patience=2)
    improved = [stopper.step(epoch, loss) for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.4, 0.45, 0.41], start=1)]
    assert improved == [True, True, False, True, False, False]
    assert stopper.best_epoch == 4 and stopper.should_stop
    never = EarlyStopping(patience=0)
    for epoch in range(1, 10):
        never.step(epoch, math.nan)
    assert not never.should_stop


def test_checkpoint_roundtrip_and_atomic_failure_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"epoch": 1, "state_dict": {"w": torch.ones(2)}})
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(2))

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"], "the temporary file is cleaned up"


class Payload:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_loading_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "cnnkit.checkpoint", "state_dict": Payload()}, path)
    with pytest.raises(CnnkitError, match=r"Cannot load checkpoint .*evil\.pt' safely"):
        load_checkpoint(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_loading_rejects_files_that_are_not_cnnkit_checkpoints(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CnnkitError, match="is not a cnnkit checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(CnnkitError, match="Cannot load checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CnnkitError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    ("scheme", "expected_std"),
    [
        ("he-normal", math.sqrt(2 / 400)),
        ("lecun-normal", math.sqrt(1 / 400)),
        ("xavier-normal", math.sqrt(2 / (400 + 300))),
        ("he-uniform", math.sqrt(2 / 400)),
        ("lecun-uniform", math.sqrt(1 / 400)),
        ("xavier-uniform", math.sqrt(2 / (400 + 300))),
    ],
)
def test_initializers_give_the_textbook_weight_scale(scheme, expected_std):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 10))
    initializer(scheme)(model)
    weight = model[0].weight
    assert weight.std().item() == pytest.approx(expected_std, rel=0.05)
    assert torch.count_nonzero(model[0].bias) == 0


def batch():
    return torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8) / 128
