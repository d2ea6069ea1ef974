"""Architectures cnnkit implements itself; registered by ``cnnkit.builtins.models``."""
