"""What ``auto`` resolves to, weight-decay groups, seeds, and the single-process strategies."""

import pytest
import torch
from torch import nn

from cnnkit.contracts import Strategy, StrategyOptions
from cnnkit.engine import strategies
from cnnkit.engine.optim import param_groups
from cnnkit.engine.precision import Precision, cpu_flags, cpu_has_native_bf16, resolve_channels_last, resolve_precision
from cnnkit.engine.seeding import derive_seed

CPU = torch.device("cpu")


def test_cpu_bf16_is_detected_from_the_cpu_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
    assert cpu_flags(info) == {"fpu", "sse", "avx512f", "avx512_bf16"}
    assert cpu_has_native_bf16({"avx512f", "amx_bf16"}) and not cpu_has_native_bf16({"avx512f", "avx2"})
    assert cpu_flags(tmp_path / "missing") == set()


def test_auto_precision_follows_the_hardware(monkeypatch):
    monkeypatch.setattr("cnnkit.engine.precision.cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", CPU) == "bf16"
    monkeypatch.setattr("cnnkit.engine.precision.cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    assert resolve_precision("fp16", CPU) == "fp16", "an explicit choice is kept"


def test_channels_last_by_default_only_with_low_precision():
    assert resolve_channels_last(None, "bf16", CPU) and not resolve_channels_last(None, "fp32", CPU)
    assert not resolve_channels_last(False, "bf16", CPU) and resolve_channels_last(True, "fp32", CPU)


def test_bf16_autocast_computes_convolutions_in_bf16_and_fp16_enables_the_scaler():
    conv = nn.Conv2d(1, 2, 3)
    with Precision("bf16", CPU).autocast():
        assert conv(torch.randn(1, 1, 5, 5)).dtype == torch.bfloat16
    with Precision("fp32", CPU).autocast():
        assert conv(torch.randn(1, 1, 5, 5)).dtype == torch.float32
    assert Precision("fp16", CPU).scaler().is_enabled() and not Precision("bf16", CPU).scaler().is_enabled()


def test_unknown_precision_is_a_usage_error(run_cli):
    result = run_cli("train", "--precision", "bf61")
    assert result.code == 2 and result.err.strip() == "Error: Unknown precision 'bf61'. Did you mean 'bf16'?"


def test_no_weight_decay_for_biases_and_norm_layers():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LayerNorm(4), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[4].weight)}
    assert len(no_decay["params"]) == 6, "conv and linear biases, batch-norm and layer-norm weight and bias"


def test_derived_seeds_use_every_bit_of_the_seed():
    assert derive_seed(1, "shuffle") != derive_seed(1 + 2**32, "shuffle") != derive_seed(1 + 2**64, "shuffle")
    assert derive_seed(5, "augment", 0) != derive_seed(5, "augment", 1)
    assert derive_seed(5, "augment", 1) == derive_seed(5, "augment", 1) < 2**63


def test_seed_out_of_range_is_refused(run_cli):
    result = run_cli("train", "--seed", str(2**64))
    assert result.code == 2 and result.err.startswith("Error: Invalid value for '--seed': must be a whole number at least 0 and at most 18446744073709551615, got 18446744073709551616.")


def test_builtin_strategies_satisfy_the_contract_and_auto_picks_single_without_gpus(monkeypatch):
    options = StrategyOptions(device="cpu")
    for factory in (strategies.single, strategies.auto):
        strategy = factory(options)
        assert isinstance(strategy, Strategy)
        assert (strategy.name, strategy.world_size, strategy.is_main, strategy.distributed) == ("single", 1, True, False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    under_torchrun = strategies.auto(options)
    assert under_torchrun.name == "ddp" and under_torchrun.world_size == 2 and under_torchrun.backend == "gloo"
    assert isinstance(under_torchrun, Strategy)


def test_dp_without_two_gpus_says_so_and_runs_as_single(capsys):
    strategy = strategies.data_parallel(StrategyOptions(device="cpu"))
    assert strategy.name == "single"
    assert "--strategy dp needs at least 2 CUDA GPUs and this machine has 0; running as 'single'" in capsys.readouterr().err


def test_sync_bn_on_cpu_is_refused(run_cli):
    result = run_cli("train", "--strategy", "ddp", "--sync-bn", "--device", "cpu")
    assert result.code == 2 and "--sync-bn needs CUDA devices" in result.err


def test_multi_node_needs_a_rendezvous_endpoint(run_cli):
    result = run_cli("train", "--strategy", "ddp", "--nnodes", "2")
    assert result.code == 2 and "--nnodes > 1 needs --rdzv-endpoint HOST:PORT" in result.err


@pytest.mark.slow
def test_compile_hands_the_wrapped_model_to_torch_compile(run_cli, tmp_path, monkeypatch):
    compiled = []

    def fake_compile(model):
        compiled.append(model)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    assert run_cli("train", "--compile", "--epochs", "1", "--out", str(tmp_path), "--quiet").code == 0
    assert len(compiled) == 1 and isinstance(compiled[0], nn.Module)
    assert run_cli("train", "--epochs", "1", "--out", str(tmp_path), "--quiet").code == 0
    assert len(compiled) == 1, "off by default"
