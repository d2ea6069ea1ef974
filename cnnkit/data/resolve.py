"""Turning ``--data`` into a dataset factory: a registered name, or a folder path."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cnnkit.console import note
from cnnkit.plugins import registry
from cnnkit.registry import Entry, UnknownNameError, unknown_name_message


def looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or spec.startswith((".", "~")) or Path(spec).exists()


def resolve_data(spec: str) -> Entry:
    """The dataset entry for ``spec``: a registered name first, else a folder path (an entry of the
    built-in folder reader).

    Unknown names that do not look like paths raise with did-you-mean suggestions.
    """
    datasets = registry("datasets")
    if spec in datasets:
        if Path(spec).is_dir():
            note(f"'{spec}' is both a registered dataset and a folder here; using the dataset (pass ./{spec} for the folder).")
        return datasets.get(spec)
    if looks_like_path(spec):
        from cnnkit.data.folder import load_folder

        factory = functools.partial(load_folder, Path(spec).expanduser())
        return Entry("datasets", spec, factory, "builtins.datasets", "an image folder")
    hint = "Run 'cnnkit datasets' to list them, or pass a folder path (ImageFolder layout)."
    raise UnknownNameError(unknown_name_message("dataset", spec, datasets.names(), hint))
