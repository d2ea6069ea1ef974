"""Ctrl-C during training saves last.pt and exits 130 without a traceback."""

import os
import signal
import subprocess
import sys
import time

import torch


def test_ctrl_c_saves_last_checkpoint_and_exits_130(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", "train", "--epochs", "500", "--patience", "0",
         "--out", str(tmp_path), "--name", "stopped"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    metrics = tmp_path / "stopped" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not metrics.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert metrics.exists(), "training never finished an epoch"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("Error: Interrupted after ")
    last = torch.load(tmp_path / "stopped" / "last.pt", weights_only=True)
    assert last["format"] == "cnnkit.checkpoint" and last["epoch"] >= 1 and last["interrupted"] is True
    assert (tmp_path / "stopped" / "curves.png").exists()
