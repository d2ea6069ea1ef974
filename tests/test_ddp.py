"""DistributedDataParallel on CPU (gloo) with two worker processes."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from cnnkit.engine.checkpoint import load_checkpoint
from cnnkit.engine.strategies import shard_steps

FP32 = ("--precision", "fp32", "--epochs", "2", "--quiet")


def test_shards_cover_each_global_batch_exactly_once_in_order():
    order = torch.randperm(23)
    for world in (1, 2, 3):
        shares = [shard_steps(23, 4 * world, rank, world, order) for rank in range(world)]
        steps = list(zip(*shares))
        for step, parts in enumerate(steps):
            joined = torch.cat(parts)
            start = step * 4 * world
            assert torch.equal(joined, order[start:start + len(joined)])
            assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
        covered = sum(len(p) for parts in steps for p in parts)
        assert 23 - covered < world, "only a last batch smaller than the number of processes is dropped"


@pytest.mark.slow
def test_two_ddp_processes_end_with_the_weights_of_one_process_with_twice_the_batch(run_cli, tmp_path):
    ddp = run_cli("train", "--strategy", "ddp", "--nproc-per-node", "2", "--batch-size", "32", *FP32,
                  "--out", str(tmp_path), "--name", "ddp")
    assert ddp.code == 0, ddp.err
    one = run_cli("train", "--strategy", "single", "--batch-size", "64", *FP32, "--out", str(tmp_path), "--name", "one")
    assert one.code == 0, one.err
    a, b = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "one" / "last.pt")
    assert a["world_size"] == 2 and b["world_size"] == 1
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], atol=1e-5, rtol=0)
    for row_a, row_b in zip(a["history"], b["history"]):
        for column in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert row_a[column] == pytest.approx(row_b[column], abs=1e-5), "epoch metrics are global"
    assert {p.name for p in tmp_path.iterdir()} == {"ddp", "one"}, "one run directory for the two processes"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the launcher gives Ctrl-C back (a later run in-process)"


@pytest.mark.slow
def test_a_crashing_rank_ends_the_job_with_its_error(run_cli, tmp_path, install_plugin):
    site = install_plugin("cnnkit-crashy", """
        import os
        from cnnkit import hookimpl

        def crashy(*, num_classes, in_channels):
            import torch
            from torch import nn

            class Crashy(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.linear = nn.Linear(in_channels * 8 * 8, num_classes)
                    self.calls = 0

                def forward(self, x):
                    self.calls += 1
                    if os.environ.get("RANK") == "1" and self.calls == 5:
                        raise RuntimeError("planted failure on rank 1")
                    return self.linear(x.flatten(1))

            return Crashy()

        @hookimpl
        def register_models(register):
            register("crashy", crashy, input_size=(1, 8, 8))
    """)
    done = subprocess.run(
        [sys.executable, "-m", "cnnkit", "train", "--model", "crashy", "--strategy", "ddp", "--nproc-per-node", "2",
         "--epochs", "3", "--out", str(tmp_path), "--name", "crash"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: rank 1 failed: RuntimeError: planted failure on rank 1 (run with --debug for the traceback)"]
    assert "Traceback" not in done.stderr and "GLHF" not in done.stderr, "the other rank's fallout stays quiet"


@pytest.mark.slow
def test_torchrun_launches_cnnkit_ddp_workers(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "cnnkit", "train", "--strategy", "ddp", "--epochs", "1", "--out", str(tmp_path), "--name", "tr"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(tmp_path / "tr" / "last.pt")["world_size"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["tr"], "one run directory, not one per process"
    assert done.stdout.count("best epoch 1:") == 1 and done.stdout.count("epoch 1/1") == 1, "only rank 0 prints"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "single", "--nproc-per-node", "2"], "--nproc-per-node only applies to --strategy ddp (this run is 'single')"),
        (["--sync-bn", "--nnodes", "2"], "--nnodes, --sync-bn only apply to --strategy ddp (this run is 'single')"),
        (["--strategy", "ddp", "--rdzv-endpoint", "localhost:99999"],
         "--rdzv-endpoint 'localhost:99999' must be HOST:PORT with a port from 1 to 65535"),
        (["--strategy", "ddp", "--rdzv-endpoint", "nohost"], "--rdzv-endpoint 'nohost' must be HOST:PORT"),
        (["--strategy", "ddp", "--nnodes", "2", "--node-rank", "5", "--rdzv-endpoint", "h:29500"],
         "--node-rank 5 must be below --nnodes 2"),
    ],
)
def test_distributed_options_are_checked_before_anything_starts(run_cli, tmp_path, args, message):
    result = run_cli("train", "--out", str(tmp_path / "runs"), *args)
    assert result.code == 2
    assert result.err.startswith(f"Error: {message}") and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_evaluation_shares_cover_every_image_even_with_more_processes_than_images():
    from types import SimpleNamespace

    from cnnkit.data.splits import Split
    from cnnkit.engine.trainer import Trainer

    split = Split(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1]))
    seen = []
    for rank in range(3):
        trainer = Trainer.__new__(Trainer)
        trainer.strategy, trainer.batch_size = SimpleNamespace(rank=rank, world_size=3), 1
        trainer.device, trainer.workers = torch.device("cpu"), 0
        seen += [int(label) for _, labels in trainer.eval_batches(split) for label in labels]
    assert sorted(seen) == [0, 1]


def proc_stat(pid):
    """(state, parent pid) of a process from /proc, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def children_of(pid):
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and (proc_stat(p) or ("", 0))[1] == pid]


def running(pid):
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
@pytest.mark.slow
def test_workers_stop_when_their_launcher_is_killed(tmp_path):
    launcher = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", "train", "--strategy", "ddp", "--nproc-per-node", "2", "--epochs", "200",
         "--patience", "0", "--out", str(tmp_path), "--name", "orphan", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "orphan" / "metrics.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = children_of(launcher.pid)
    assert len(workers) == 2
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = [pid for pid in workers if running(pid)]
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert not orphans, "orphaned workers would keep writing the run directory"


def test_a_distributed_plugin_strategy_whose_workers_fail_ends_with_their_code(run_cli, install_plugin, tmp_path):
    install_plugin("cnnkit-farm", """
        from cnnkit import hookimpl

        def farm(options):
            from cnnkit.contracts import SingleProcessStrategy
            import torch

            class Farm(SingleProcessStrategy):
                name = "farm"
                distributed = True

                def launch(self, argv):
                    return 3

            return Farm(torch.device("cpu"))

        @hookimpl
        def register_strategies(register):
            register("farm", farm, distributed=True)
    """)
    result = run_cli("train", "--strategy", "farm", "--out", str(tmp_path))
    assert result.code == 3
    assert result.err.strip() == "Error: the workers of strategy 'farm' exited with code 3"
