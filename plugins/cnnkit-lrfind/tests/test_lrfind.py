"""``cnnkit lr-find`` against fastai's ``lr_find``: the exponential schedule, the bias-corrected
smoothing, the 4x divergence stop, the suggestion rules computed by hand, the model and optimizer
put back, and a run on the digits."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cnnkit_lrfind
import pytest
import torch
from cnnkit_lrfind.finder import Curve, SmoothedLoss, minimum, range_test, schedule, steep, suggest, valley
from torch import nn

from cnnkit.contracts import prepare_training

FAST = ("--batch-size", "16", "--num-it", "30", "--precision", "fp32")


def test_the_rate_rises_exponentially_from_start_lr_towards_end_lr() -> None:
    lrs = schedule(1e-7, 10.0, 100)
    assert len(lrs) == 100 and lrs[0] == 1e-7
    assert lrs[50] == pytest.approx(1e-7 * 1e8**0.5) and lrs[-1] == pytest.approx(10 * 1e-8**0.01)
    assert all(b / a == pytest.approx(1e8**0.01) for a, b in zip(lrs, lrs[1:]))


def test_the_loss_is_smoothed_with_beta_098_and_bias_corrected() -> None:
    smoothed = SmoothedLoss()
    assert smoothed.add(1.0) == pytest.approx(1.0), "the first loss as it is, not 0.02 of it"
    assert smoothed.add(2.0) == pytest.approx((0.98 * 0.02 + 0.02 * 2) / (1 - 0.98**2))


def fake_step(losses: list[float], optimizer: torch.optim.Optimizer, seen: list[float]) -> Callable[[], float]:
    stream = iter(losses)

    def step() -> float:
        seen.append(optimizer.param_groups[0]["lr"])
        return next(stream)

    return step


def test_it_stops_after_the_step_whose_smoothed_loss_exceeds_four_times_the_minimum() -> None:
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: list[float] = []
    losses = [1.0] * 10 + [200.0] * 10
    curve = range_test(model, optimizer, fake_step(losses, optimizer, seen), start_lr=1e-3, end_lr=1.0, num_it=20)
    smoothed = SmoothedLoss()
    expected = [smoothed.add(loss) for loss in losses]
    first_over = next(i for i, value in enumerate(expected) if value > 4 * min(expected[: i + 1]))
    assert curve.losses == pytest.approx(expected[: first_over + 1]), "the diverging step is recorded, then it stops"
    assert seen == curve.lrs == schedule(1e-3, 1.0, 20)[: first_over + 1]
    assert "diverged" in curve.stopped and optimizer.param_groups[0]["lr"] == 0.1

    whole = range_test(model, optimizer, fake_step(losses, optimizer, []), start_lr=1e-3, end_lr=1.0, num_it=20, stop_div=False)
    assert len(whole.losses) == 20 and whole.stopped == ""


def test_a_loss_that_is_not_finite_ends_the_test_unrecorded() -> None:
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    curve = range_test(model, optimizer, fake_step([1.0, 0.9, math.nan, 0.5], optimizer, []), start_lr=1e-8, end_lr=1e4,
                       num_it=4, stop_div=False)
    assert len(curve.losses) == 2 and curve.stopped == "the loss stopped being finite at lr 1.00e-02"


def test_the_model_and_the_optimizer_are_put_back() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))

    def step() -> float:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    step()  # the optimizer has state (moments, step counts) before the test
    model_before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer_before = optimizer.state_dict()
    moments = {k: {n: t.clone() if isinstance(t, torch.Tensor) else t for n, t in s.items()} for k, s in optimizer_before["state"].items()}
    curve = range_test(model, optimizer, step, num_it=20, stop_div=False)
    assert len(curve.lrs) == 20
    assert all(torch.equal(v, model_before[k]) for k, v in model.state_dict().items()), "weights and BN statistics"
    after = optimizer.state_dict()
    assert after["param_groups"] == optimizer_before["param_groups"]
    for key, state in after["state"].items():
        assert all(torch.equal(t, moments[key][n]) if isinstance(t, torch.Tensor) else t == moments[key][n] for n, t in state.items())


def test_valley_on_a_curve_computed_by_hand() -> None:
    # lds (longest decreasing sequence ending at each point) = [1, 1, 2, 3, 1, 4, 5, 1]; the longest
    # ends at point 6 with 5 points, so fastai's valley runs from 6 - 5 = 1 to 6: sections = 5/3,
    # idx = 1 + int(5/3) + int(5/6) = 2.
    losses = [3, 5, 4, 2, 6, 1, 0.5, 7]
    lrs = [10.0**i for i in range(8)]
    assert valley(lrs, losses) == (100.0, 2)
    # a range test's shape: flat, falling, rising. The fall 2.3 > 2.29 > ... > 1.0 has 7 points and
    # ends at point 7: sections = 7/3, idx = 0 + 2 + int(7/6) = 3.
    assert valley(list(range(10)), [2.3, 2.3, 2.29, 2.2, 2.0, 1.6, 1.2, 1.0, 1.3, 3.0]) == (3.0, 3)
    # fastai's quirk kept: one drop and then a rise gives max_start = -1, idx = -1 (the last point)
    assert valley([1.0, 2.0, 3.0, 4.0], [5, 4, 6, 7]) == (4.0, -1)


def test_steep_and_minimum_on_curves_computed_by_hand() -> None:
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    # slopes against ln(lr), each step ln(10): -0.1, -0.9, -0.2, +0.1 (over ln 10): steepest at index 1
    assert steep(lrs, [3, 2.9, 2.0, 1.8, 1.9]) == (1e-3, 1)
    assert minimum(lrs, [3, 2, 1, 1.5, 4]) == (pytest.approx(1e-3), 2), "a tenth of the rate at the lowest loss"


def test_suggestions_leave_off_the_first_tenth_and_the_last_five_points() -> None:
    lrs, losses = schedule(1e-7, 10, 100), [3.0 - 0.01 * i for i in range(100)]
    losses[5] = 0.0  # inside the skipped first tenth: ignored
    made = suggest(Curve(lrs, losses, 100), "minimum")
    assert made.lr == pytest.approx(lrs[94] / 10) and made.point == (lrs[94], losses[94])
    assert suggest(Curve(lrs, losses, 100)).lr == valley(lrs[10:-5], losses[10:-5])[0]
    with pytest.raises(ValueError, match=r"recorded 15 step\(s\); a suggestion needs more than 15"):
        suggest(Curve(lrs[:15], losses[:15], 100))


def test_a_real_model_is_exactly_as_built_after_the_test() -> None:
    session = prepare_training(model="mnist-cnn", batch_size=16, precision="fp32", lr=1e-7)
    try:
        model = session.model
        before = {k: v.clone() for k, v in model.state_dict().items()}
        curve = range_test(model, session.optimizer, session.step, num_it=8, end_lr=1.0, stop_div=False)
    finally:
        session.close()
    assert len(curve.lrs) == 8 and curve.losses[0] > 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert session.optimizer.state_dict()["state"] == {}, "the optimizer is as fresh as it was"


def test_lr_find_on_the_digits_prints_a_sane_rate_and_writes_the_plot(cnnkit: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "lr.png"
    result = cnnkit("lr-find", "--model", "mnist-cnn", *FAST, "--out", str(out))
    assert result.code == 0, result.err
    rate = float(re.search(r"Suggested learning rate \(valley\): (\S+)", result.out)[1])  # type: ignore[index]
    assert 1e-4 <= rate <= 1
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"Plot: {out}" in result.out

    again = cnnkit("lr-find", "--out", str(out))
    assert again.code == 2 and f"'{out}' exists; pass --force to overwrite it" in again.err


@pytest.mark.parametrize("args, message", [
    (["--start-lr", "1", "--end-lr", "0.1"], "--start-lr 1 must be below --end-lr 0.1"),
    (["--num-it", "3"], "3 is not in the range x>=6"),
    (["--end-lr", "nan"], "must be a number above 0, got nan"),
    (["--out", "curve.jpg"], "'curve.jpg' must name a .png file"),
    (["--out", "missing/lr.png"], "the folder 'missing' does not exist"),
    (["--model", "mnist-cn"], "Unknown model 'mnist-cn'. Did you mean 'mnist-cnn'"),
    (["--batch-size", "0"], "Option 'batch_size' must be a whole number at least 1"),
])
def test_bad_options_are_refused_in_one_line(cnnkit: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = cnnkit("lr-find", *args)
    assert result.code == 2 and message in result.err, result.err
    assert not (tmp_path / "lr-find.png").exists()


def test_the_plugin_registers_the_command_without_importing_torch(cnnkit: Callable[..., Any]) -> None:
    assert cnnkit_lrfind.CNNKIT_API == ">=1.0,<2"
    assert re.search(r"^\s+lr-find\s+Learning-rate range test", cnnkit("--help").out, re.MULTILINE)
    code = "import json, sys, cnnkit_lrfind; print(json.dumps([m for m in sys.modules if m.split('.')[0] == 'torch']))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(imported.stdout) == []
