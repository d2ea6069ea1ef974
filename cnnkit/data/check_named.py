"""``cnnkit data check NAME`` for a built-in dataset (``digits``, ``mnist``...): its classes, split
sizes, duplicates, leaks and label conflicts, split as ``cnnkit train --data NAME`` splits it, at
the stored size. It never downloads: a dataset whose files are not there yet is named in one line."""

from __future__ import annotations

import hashlib

import numpy as np

from cnnkit.data.check import Report, Sample, find_duplicates, tally
from cnnkit.errors import UsageError

BUILTIN = "builtins.datasets"


class NotChecked(Exception):
    """A dataset name that data check does not read; ``str()`` says why, in one line."""


def check_named(name: str, val_split: float = 0.2, seed: int = 0, data_dir: str = "") -> Report:
    """The report of the registered dataset ``name``, or :class:`NotChecked`."""
    from cnnkit.data.named import KNOWN, data_root, missing_files
    from cnnkit.plugins import registry

    entry = registry("datasets").get(name)
    if entry.plugin != BUILTIN:
        raise NotChecked(f"'{name}' is a dataset of plugin '{entry.plugin}', not a folder; cnnkit data check reads image "
                         f"folders and the built-in datasets, so 'cnnkit train --data {name}' is the way to read it.")
    report = Report(name, layout=f"built-in dataset: {entry.help}")
    known = KNOWN.get(name)
    if known is None:
        shape, found = digits_samples(report)
        plan = ["validation from the dataset's fixed split", "shipped with cnnkit"]
    else:
        folder = (data_root(data_dir) / known.folder).resolve()
        if missing_files(known, data_root(data_dir)):
            raise NotChecked(f"'{name}' is a built-in dataset whose files are not in '{folder}' yet, so there is nothing to "
                             f"check; 'cnnkit train --data {name}' downloads them "
                             "(or pass --data-dir to the folder that holds them).")
        try:
            shape, found = known_samples(name, report, val_split, seed, data_dir)
        except UsageError as exc:
            report.problems.append(str(exc).rstrip("."))
            return report
        plan = [f"validation split off train by --val-split {val_split:g}", f"read from '{folder}'"]
    tally(report, found, {"val": "validation", "test": "test"})
    report.sizes = {"width": [shape[2]] * 3, "height": [shape[1]] * 3}
    report.modes = {"L" if shape[0] == 1 else "RGB": sum(len(s) for s in found.values())}
    find_duplicates(report, found, own_data=False)
    sizes = " / ".join(f"{sum(report.counts[s].values())} {s}" for s in ("train", "val", "test") if s in report.counts)
    report.plan = [f"trains on {sizes} images ({plan[0]}; the test split scored at the end)",
                   f"{plan[1]}, {shape[1]}x{shape[2]} {'grayscale' if shape[0] == 1 else 'RGB'}, resized to the model's input"]
    if report.conflicts:
        report.plan.append(f"{len(report.conflicts)} image(s) in two classes, as the dataset was published: trained as they are")
    return report


def known_samples(name: str, report: Report, val_split: float, seed: int, data_dir: str):
    """A torchvision dataset's images, named by their index in its training or test set."""
    from cnnkit.contracts._data import DataRequest
    from cnnkit.data.named import KNOWN, read_known

    shape = KNOWN[name].shape
    request = DataRequest(image_size=shape[1:], channels=shape[0], val_split=val_split, seed=seed, data_dir=data_dir,
                          download=False)
    arrays = read_known(name, request)
    report.classes = arrays.classes
    (train, train_labels), (test, test_labels) = arrays.train, arrays.test
    found = {
        "train": samples(train, train_labels, arrays.train_idx.tolist(), "training image"),
        "val": samples(train, train_labels, arrays.val_idx.tolist(), "training image"),
        "test": samples(test, test_labels, range(len(test)), "test image"),
    }
    return tuple(int(d) for d in train.shape[1:]), found


def digits_samples(report: Report):
    """The shipped digits at their stored 8x8, named by their position in each split."""
    from cnnkit.contracts._data import DataRequest
    from cnnkit.data.digits import load_digits
    from cnnkit.data.splits import Split

    data = load_digits(DataRequest(image_size=(8, 8), channels=1))
    report.classes = list(data.classes)
    parts = {split: part if isinstance(part, Split) else part.materialize() for split, part in data.splits().items()}
    found = {split: samples(part.images.numpy(), part.labels, range(len(part)), f"{split} image") for split, part in parts.items()}
    return (1, 8, 8), found


def samples(images: np.ndarray, labels, indices, noun: str) -> list[Sample]:
    """Images ``indices`` by name (``noun`` and index), label and content hash."""
    labels = labels.tolist()
    return [Sample(f"{noun} {i}", int(labels[i]), hashlib.sha256(np.ascontiguousarray(images[i]).tobytes()).hexdigest())
            for i in indices]
