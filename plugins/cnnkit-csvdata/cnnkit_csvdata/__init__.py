"""cnnkit plugin registering the dataset ``csv``: images labelled by a CSV file, the layout Kaggle
uses (``labels.csv`` beside ``train/`` or ``images/``). The factory is named by reference, so
importing this module imports no torch."""

from __future__ import annotations

from cnnkit import hookimpl
from cnnkit.contracts import DatasetRegister

__version__ = "0.1.0"
CNNKIT_API = ">=1.0,<2"

HELP = ("Images labelled by a CSV file (Kaggle layout): --data-dir FOLDER with labels.csv (file or id, label) "
        "beside train/ or images/, or --data-dir the CSV file; default: the current folder")


@hookimpl
def register_datasets(register: DatasetRegister) -> None:
    register("csv", "cnnkit_csvdata.dataset:load_csv", help=HELP)
