"""cnnkit's cache folder: ``$CNNKIT_CACHE``, else ``cnnkit`` under ``$XDG_CACHE_HOME`` (default
``~/.cache``). Datasets known by name keep their files in its ``data`` folder, and the names of
torchvision's models are kept there per installed version. Torch-free: model listings read it."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "CNNKIT_CACHE"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnnkit"
    return Path(os.environ.get(CACHE_ENV) or default)
