"""cnnkit: train and fine-tune image-classification CNNs from the command line.

This module must stay light: it is imported by ``cnnkit --help`` and by every plugin, so it
never imports torch.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("cnnkit")
"""Decorator that marks a function in a plugin module as a cnnkit hook implementation."""

__all__ = ["__version__", "hookimpl"]
