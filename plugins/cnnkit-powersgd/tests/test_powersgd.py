"""ddp-powersgd: settings, registration, the hook in two gloo workers, and a real 2-process run."""

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cnnkit_powersgd
import pytest
import torch
from cnnkit_powersgd.strategy import PowerSGDSettings, PowerSGDStrategy

from cnnkit.contracts import UsageError
from cnnkit.testing import run_cli

HERE = Path(__file__).parent




def test_settings_come_from_the_environment_with_pytorchs_defaults():
    assert PowerSGDSettings.from_env({}) == PowerSGDSettings(rank=1, start=1000)
    assert PowerSGDSettings.from_env({"CNNKIT_POWERSGD_RANK": "4", "CNNKIT_POWERSGD_START": " 2 "}) == PowerSGDSettings(4, 2)
    for name, text, least in (("CNNKIT_POWERSGD_RANK", "0", 1), ("CNNKIT_POWERSGD_RANK", "two", 1),
                              ("CNNKIT_POWERSGD_START", "1", 2), ("CNNKIT_POWERSGD_START", "-5", 2)):
        with pytest.raises(UsageError, match=f"^{name} must be a whole number of at least {least} .*, got '{text}'$"):
            PowerSGDSettings.from_env({name: text})


def test_the_entry_point_registers_a_distributed_strategy_under_its_own_name():
    assert any(ep.name == "powersgd" and ep.value == "cnnkit_powersgd" for ep in importlib.metadata.entry_points(group="cnnkit"))
    captured = {}
    cnnkit_powersgd.register_strategies(register=lambda name, factory, **meta: captured.update({name: (factory, meta)}))
    factory, meta = captured["ddp-powersgd"]
    assert meta["distributed"] is True and factory == "cnnkit_powersgd.strategy:PowerSGDStrategy"
    assert PowerSGDStrategy.name == "ddp-powersgd", "workers are started with --strategy NAME"


def test_a_bad_setting_is_reported_before_any_worker_starts(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNKIT_POWERSGD_START", "1")
    code, _, err = run_cli("train", "--strategy", "ddp-powersgd", "--nproc-per-node", "2", "--out", str(tmp_path / "runs"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "CNNKIT_POWERSGD_START must be a whole number of at least 2" in err and "got '1'" in err
    assert not (tmp_path / "runs").exists()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_in_two_workers_the_hook_compresses_from_its_start_step_and_is_plain_allreduce_before(tmp_path):
    out, port = tmp_path / "report.json", free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, str(HERE / "two_workers.py"), str(rank), str(port), str(out)],
                                env=env, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], errors
    report = json.loads(out.read_text())
    assert report["late_minus_plain"] == 0.0, "before its start step PowerSGD is DDP's own averaging all-reduce"
    assert report["early_minus_plain"] > 1e-3
    assert report["steps_counted"] == [6, 6], "the hook ran in every step of both models"
    assert report["compression_rate"] > 5
    assert report["early_gradient_rank"] == 1 and report["plain_gradient_rank"] > 1, "rank-1 factors P Q^T arrived"


@pytest.mark.slow
def test_two_processes_train_with_compressed_gradients(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNKIT_POWERSGD_START", "2")
    common = ("--precision", "fp32", "--epochs", "1", "--quiet", "--out", str(tmp_path))
    code, _, err = run_cli("train", "--strategy", "ddp-powersgd", "--nproc-per-node", "2", "--batch-size", "32",
                          *common, "--name", "powersgd")
    assert code == 0, err
    code, _, err = run_cli("train", "--strategy", "single", "--batch-size", "64", *common, "--name", "one")
    assert code == 0, err
    compressed, one = (torch.load(tmp_path / name / "last.pt", weights_only=True) for name in ("powersgd", "one"))
    assert compressed["world_size"] == 2
    assert compressed["history"][-1]["val_acc"] > 0.6, "it still learns (chance: 0.1)"
    differences = [(value - one["state_dict"][key]).abs().max().item() for key, value in compressed["state_dict"].items()]
    assert max(differences) > 1e-3, "plain ddp would equal one process with twice the batch (tests/test_ddp.py)"
    assert not torch.equal(compressed["state_dict"]["0.weight"], one["state_dict"]["0.weight"])
