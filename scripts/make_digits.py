"""Build ``cnnkit/data/digits.npz`` from scikit-learn's bundled copy of the UCI digits.

Run once at build time (``python scripts/make_digits.py``); scikit-learn is a dev-only dependency.
The split is computed here and stored in the file, so every install sees the same train/val/test
images whatever numpy or torch version it runs.

Source: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
Learning Repository (1998), https://doi.org/10.24432/C50P49 (CC BY 4.0).
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parent.parent / "cnnkit" / "data" / "digits.npz"
FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
SEED = 20261126


def stratified_split(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    split = np.empty(len(labels), dtype=np.uint8)
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val = round(len(idx) * FRACTIONS["val"])
        n_test = round(len(idx) * FRACTIONS["test"])
        split[idx[:n_val]] = SPLIT_CODES["val"]
        split[idx[n_val:n_val + n_test]] = SPLIT_CODES["test"]
        split[idx[n_val + n_test:]] = SPLIT_CODES["train"]
    return split


def main() -> None:
    digits = load_digits()
    # Pixel values are counts 0..16 of set pixels in 4x4 blocks; scale them to 0..255.
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    split = stratified_split(labels, np.random.default_rng(SEED))
    np.savez_compressed(OUT, images=images, labels=labels, split=split)
    counts = {name: int((split == code).sum()) for name, code in SPLIT_CODES.items()}
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {counts}")


if __name__ == "__main__":
    main()
