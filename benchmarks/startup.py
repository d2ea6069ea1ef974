"""Start-up time of the light commands, against a bare Python start-up measured in the same run.

Target (issue #2): ``cnnkit --help`` under 0.3 s on the 2-core development machine.
Run: ``python benchmarks/startup.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "cnnkit --help": [sys.executable, "-m", "cnnkit", "--help"],
    "cnnkit plugins": [sys.executable, "-m", "cnnkit", "plugins"],
    "cnnkit models": [sys.executable, "-m", "cnnkit", "models"],
    "import torch (for scale)": [sys.executable, "-c", "import torch"],
}
TARGET_SECONDS = 0.3


def median_seconds(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    median_seconds(COMMANDS["cnnkit --help"], 1)  # warm the file cache
    results = {name: median_seconds(argv, args.repeat) for name, argv in COMMANDS.items()}
    baseline = results["python -c pass (baseline)"]
    print(f"{'command':<28} {'median s':>9} {'x baseline':>11}")
    for name, seconds in results.items():
        print(f"{name:<28} {seconds:>9.3f} {seconds / baseline:>11.1f}")
    verdict = "meets" if results["cnnkit --help"] < TARGET_SECONDS else "MISSES"
    print(f"cnnkit --help {verdict} the {TARGET_SECONDS} s target")


if __name__ == "__main__":
    main()
