"""What a ``--log`` callback adds to an epoch of the default run (mnist-cnn on the shipped digits).

The default run trains without callbacks and with each tracker (``tensorboard``, ``mlflow`` on a
SQLite file, both), same seed, in this process, in alternating rounds so drift is shared. Two
costs are measured per epoch: the time cnnkit spends in the callbacks' calls (``epoch_ended``,
``best_changed``; timed where cnnkit makes them), plus the CPU time of the trackers' background
threads (MLflow's logging queue, TensorBoard's event writer; read from ``/proc``, so exact however
busy the machine is). Their sum over the baseline's epoch is the share checked (target < 2%).
Whole-epoch wall times are printed too, paired round by round, but on a shared 2-core machine they
move by more than 2% from run to run (the baseline's own spread is printed). Also printed: the
one-time cost of ``run_started`` + ``run_ended`` (opening the tracker, figures, artifacts), paid
once per run, not per epoch.

Run: ``python benchmarks/observer_overhead.py [--epochs N] [--rounds R]`` (needs ``pip install
'cnnkit[tensorboard,mlflow]'``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from cnnkit.options import TrainConfig
from cnnkit.recipe import observers
from cnnkit.recipe.run import train

PER_EPOCH = ("epoch_ended", "best_changed")


def thread_cpu_seconds() -> dict[int, float]:
    """CPU seconds so far of every Python thread but the main one (a tracker's background
    writers), by native id, from ``/proc/self/task`` (Linux; empty elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    seconds = {}
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.native_id is None:
            continue
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[thread.native_id] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return seconds


def timed_tell(spent: dict[str, float], background: dict[int, float]):
    """``Observers._tell`` timed per method; at each call the background threads' CPU is sampled
    (a thread a tracker closes at the end is counted up to its last sample)."""
    original = observers.Observers._tell

    def tell(self, method, event):
        background.update(thread_cpu_seconds())
        started = time.perf_counter()
        original(self, method, event)
        spent[method] += time.perf_counter() - started

    return original, tell


def run(log: str, epochs: int, folder: Path, index: int) -> tuple[list[float], float, float]:
    """Every epoch's seconds, the callbacks' seconds per epoch (their calls, plus their
    background threads' CPU), and their one-time seconds."""
    spent: dict[str, float] = defaultdict(float)
    before = thread_cpu_seconds()
    background: dict[int, float] = {}
    original, tell = timed_tell(spent, background)
    observers.Observers._tell = tell  # type: ignore[method-assign]
    try:
        name = f"{log.replace(',', '+') or 'none'}-{index}"
        config = TrainConfig(epochs=epochs, patience=0, quiet=True, out=str(folder), name=name, log=log,
                             log_uri=f"sqlite:///{folder / 'mlflow.db'}" if "mlflow" in log else "", device="cpu")
        result = train(config)
    finally:
        observers.Observers._tell = original  # type: ignore[method-assign]
    assert result is not None
    threads = sum(cpu - before.get(tid, 0.0) for tid, cpu in background.items())
    per_epoch = (sum(spent[m] for m in PER_EPOCH) + threads) / len(result.history)
    return [row["seconds"] for row in result.history], per_epoch, spent["run_started"] + spent["run_ended"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    logs = ("", "tensorboard", "mlflow", "tensorboard,mlflow")
    ratios: dict[str, list[float]] = defaultdict(list)
    epochs: dict[str, list[float]] = defaultdict(list)
    calls: dict[str, list[float]] = defaultdict(list)
    once: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            medians = {}
            for log in logs:
                seconds, per_epoch, one_time = run(log, args.epochs, Path(tmp), round_)
                medians[log] = statistics.median(seconds[1:])  # the first epoch pays warm-up
                epochs[log].append(medians[log])
                calls[log].append(per_epoch)
                once[log].append(one_time)
            for log in logs[1:]:
                ratios[log].append(medians[log] / medians[""])
    baseline = statistics.median(epochs[""])
    spread = (max(epochs[""]) - min(epochs[""])) / baseline
    print(f"default run, {args.rounds} rounds x {args.epochs} epochs; no callbacks: {baseline:.3f} s per epoch "
          f"(median; the baseline's own rounds spread over {spread:.0%})")
    print(f"{'--log':<20} {'cost s/epoch':>13} {'share':>7} {'epoch x baseline':>17} {'once per run s':>15}")
    for log in logs[1:]:
        ratio, per_epoch = statistics.median(ratios[log]), statistics.median(calls[log])
        share = per_epoch / baseline
        flag = "ok" if share < 0.02 else "OVER 2%"
        print(f"{log:<20} {per_epoch:>13.4f} {share:>7.2%} {ratio:>17.3f} {statistics.median(once[log]):>15.2f}  {flag}")
    print("cost: the callbacks' calls cnnkit waits for, plus the CPU of their background threads, per epoch;")
    print("share: that over the baseline's epoch (target < 2%). epoch x baseline: the median over rounds of the")
    print("tracker's median epoch over the baseline's in the same round (wall time: only as exact as the spread above).")


if __name__ == "__main__":
    main()
