"""Unbalanced classes: does ``--class-weights auto`` or ``--sampler balanced`` raise the rare
class's recall over the plain run with the same seed?

    python benchmarks/unbalanced.py [--rare 8] [--keep 0.1] [--epochs 10] [--seeds 0 1 2 3 4]

Builds an ImageFolder tree (PNG files) from the shipped digits (``cnnkit/data/digits.npz``):

- ``train/<digit>/``: the digits' training split, with the ``--rare`` digit thinned to ``--keep``
  of its images (the first ones, in the file's order): one class 10x rarer than the others.
  There is no ``val/`` folder, so cnnkit splits validation off it (``--val-split 0.2``,
  stratified): validation is as unbalanced as training, as it would be for a user who has only
  this data, and it alone chooses the best epoch.
- ``test/<digit>/``: the digits' validation and test splits, every class in full (about 54
  images each), never trained on nor used to choose an epoch: recall is measured here.

Then trains mnist-cnn three ways with the same seed and settings (plain, ``--class-weights
auto``, ``--sampler balanced``) through :func:`cnnkit.recipe.run.train`, once per ``--seeds``,
evaluates each best checkpoint on ``test/`` as ``cnnkit evaluate`` does (its per-class recall,
balanced accuracy and macro F1) and prints a table and the gains over the plain run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

VARIANTS = {"plain": {}, "class-weights auto": {"class_weights": "auto"}, "sampler balanced": {"sampler": "balanced"}}


def make_folder(root: Path, rare: str, keep: float) -> dict[str, dict[str, int]]:
    """The tree described above; returns the images per split and class."""
    from importlib import resources

    with resources.files("cnnkit.data").joinpath("digits.npz").open("rb") as f:
        arrays = np.load(f)
        images, labels, split = arrays["images"], arrays["labels"], arrays["split"]
    counts: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    for digit in range(10):
        name = str(digit)
        train = np.flatnonzero((labels == digit) & (split == 0))
        if name == rare:
            train = train[:max(1, round(len(train) * keep))]
        test = np.flatnonzero((labels == digit) & (split > 0))
        for part, indices in (("train", train), ("test", test)):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in indices:
                Image.fromarray(images[i].astype(np.uint8)).save(folder / f"{i:04d}.png")
            counts[part][name] = len(indices)
    return counts


def train_one(data: Path, out: Path, name: str, seed: int, epochs: int, extra: dict) -> Path:
    from cnnkit.options import TrainConfig
    from cnnkit.plugins import reset_host
    from cnnkit.recipe.run import train

    reset_host()
    config = TrainConfig(data=str(data), epochs=epochs, seed=seed, patience=0, out=str(out), name=name, quiet=True,
                         precision="fp32", **extra)
    train(config, bars=False)
    return out / name


def evaluate(run: Path) -> dict:
    """``cnnkit evaluate RUN --json`` (on the run's own test/ split), in this process."""
    from cnnkit.inference.evaluate import evaluate_checkpoint

    return evaluate_checkpoint(str(run), "", "test", run / "eval", normalize=False).as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rare", default="8", help="The digit kept rare in train (default 8).")
    parser.add_argument("--keep", type=float, default=0.1, help="The share of its training images kept (default 0.1).")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnkit-unbalanced-") as folder:
        root = Path(folder)
        counts = make_folder(root / "data", args.rare, args.keep)
        others = [n for d, n in counts["train"].items() if d != args.rare]
        print(f"train/: digit {args.rare} {counts['train'][args.rare]} images, the others {min(others)}..{max(others)} "
              f"(median {statistics.median(others):g}); 20% of each class split off for validation")
        print(f"test/: {sum(counts['test'].values())} images, digit {args.rare}: {counts['test'][args.rare]}")
        results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
        for seed in args.seeds:
            for variant, extra in VARIANTS.items():
                run = train_one(root / "data", root / "runs", f"{variant.replace(' ', '-')}-{seed}", seed, args.epochs, extra)
                report = evaluate(run)
                rare = next(row for row in report["classes"] if row["name"] == args.rare)
                results[variant].append({"seed": seed, "rare_recall": rare["recall"], "rare_precision": rare["precision"],
                                         "accuracy": report["accuracy"], "balanced": report["balanced_accuracy"],
                                         "macro_f1": report["macro_f1"]})
        print_table(results, args.rare)
    print(f"{time.perf_counter() - started:.0f} s in all")


def print_table(results: dict[str, list[dict]], rare: str) -> None:
    seeds = [row["seed"] for row in results["plain"]]
    print(f"\ndigit {rare}'s recall on test/ per seed; then means over seeds {seeds} of its recall and precision, and of "
          "every class's accuracy, balanced accuracy and macro F1:")
    print(f"{'variant':20}" + "".join(f"  seed {s:<3}" for s in seeds) + "  mean recall  precision  accuracy  balanced  macro F1")
    for variant, rows in results.items():
        recall = statistics.mean(row["rare_recall"] for row in rows)
        print(f"{variant:20}" + "".join(f"  {100 * row['rare_recall']:7.1f}%" for row in rows)
              + f"  {100 * recall:10.1f}%  {100 * statistics.mean(r['rare_precision'] for r in rows):8.1f}%"
              + f"  {100 * statistics.mean(r['accuracy'] for r in rows):7.1f}%  {100 * statistics.mean(r['balanced'] for r in rows):7.1f}%"
              + f"  {statistics.mean(r['macro_f1'] for r in rows):8.3f}")
    for variant, rows in results.items():
        if variant == "plain":
            continue
        gains = [100 * (row["rare_recall"] - base["rare_recall"]) for row, base in zip(rows, results["plain"])]
        print(f"{variant}: rare-class recall {'+' if statistics.mean(gains) >= 0 else ''}{statistics.mean(gains):.1f} points "
              f"over plain (per seed: {', '.join(f'{g:+.1f}' for g in gains)})")


if __name__ == "__main__":
    main()
