"""DDP scaling on CPU: 2 processes x 1 thread against 1 process x 2 threads, same machine, same run.

Both train mnist-cnn on the shipped digits through ``cnnkit train`` with the same global batch
(2 x B against 1 x 2B), seed and fp32 arithmetic, so they see the same batches and should end with
the same losses. Throughput counts training and validation images per second of epoch time
(from each run's metrics.csv, so process start-up is left out). Target: ratio >= 0.95.

Run: ``python benchmarks/ddp_scaling.py [--epochs N] [--batch-size B]`` (B per process).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def train(out: Path, name: str, threads: int, *options: str) -> list[dict[str, float]]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "cnnkit", "train", "--out", str(out), "--name", name, "--quiet",
               "--precision", "fp32", "--patience", "0", *options]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    with open(out / name / "metrics.csv", newline="") as f:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    args = parser.parse_args()
    from cnnkit.data.digits import load_digits

    digits = load_digits()
    images_per_epoch = len(digits.train) + len(digits.val)
    epochs = ["--epochs", str(args.epochs)]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        runs = {
            "1 process x 2 threads": train(out, "one", 2, "--strategy", "single", "--batch-size", str(2 * args.batch_size), *epochs),
            "2 processes x 1 thread": train(out, "ddp", 1, "--strategy", "ddp", "--nproc-per-node", "2",
                                            "--batch-size", str(args.batch_size), *epochs),
        }
    rates = {}
    print(f"mnist-cnn on digits, global batch {2 * args.batch_size}, {args.epochs} epochs, first epoch left out (warm-up)")
    for name, rows in runs.items():
        seconds = sum(row["seconds"] for row in rows[1:])
        rates[name] = images_per_epoch * (len(rows) - 1) / seconds
        print(f"{name:<24} {rates[name]:8.0f} images/s   final train loss {rows[-1]['train_loss']:.6f}")
    one, ddp = runs.values()
    ratio = rates["2 processes x 1 thread"] / rates["1 process x 2 threads"]
    difference = max(abs(a["train_loss"] - b["train_loss"]) for a, b in zip(one, ddp))
    print(f"images/s ratio (ddp / threads): {ratio:.3f} (target >= 0.95)")
    print(f"largest train-loss difference over the epochs: {difference:.1e}")


if __name__ == "__main__":
    main()
