"""Turning ``--data`` into a dataset factory: a registered name, or a folder path."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

from cnnkit.console import note
from cnnkit.plugins import registry
from cnnkit.registry import UnknownNameError, unknown_name_message


def looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or spec.startswith((".", "~")) or Path(spec).exists()


def resolve_data(spec: str) -> Callable[..., Any]:
    """The dataset factory for ``spec``: a registered name first, else a folder path.

    Unknown names that do not look like paths raise with did-you-mean suggestions.
    """
    datasets = registry("datasets")
    if spec in datasets:
        if Path(spec).is_dir():
            note(f"'{spec}' is both a registered dataset and a folder here; using the dataset (pass ./{spec} for the folder).")
        return datasets.get(spec).factory
    if looks_like_path(spec):
        from cnnkit.data.folder import load_folder

        return functools.partial(load_folder, Path(spec).expanduser())
    hint = "Run 'cnnkit datasets' to list them, or pass a folder path (ImageFolder layout)."
    raise UnknownNameError(unknown_name_message("dataset", spec, datasets.names(), hint))
