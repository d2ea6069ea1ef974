"""Helpers for testing a cnnkit plugin, so a plugin's tests need none of cnnkit's own fixtures.

- :func:`plugin_host`: a plugin host with the built-ins and the plugins you pass, and nothing else
  that happens to be installed, failing loudly (strict) when a plugin does not load or register;
- :func:`run_cli`: run ``cnnkit ARGS...`` in this process with a fresh host and get
  ``(code, out, err)``; pass ``plugins=`` to run it with only the built-ins and those;
- :func:`tiny_image_folder`: a small, learnable image folder in ImageFolder layout.

Importing this module imports no torch (so a test of "my plugin imports no torch" can use it)::

    import cnnkit_myplugin
    from cnnkit.testing import plugin_host, run_cli

    def test_registers_the_model() -> None:
        entry = plugin_host(cnnkit_myplugin).registry("models").get("mynet")
        assert entry.plugin == "myplugin"

    def test_trains(tmp_path) -> None:
        result = run_cli("train", "--model", "mynet", "--epochs", "1", "--quiet", "--out", str(tmp_path),
                         plugins=[cnnkit_myplugin])
        assert result.code == 0, result.err
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from cnnkit import plugins as _plugins
from cnnkit.plugin_selection import ENTRY_POINT_GROUP, PluginInfo, entry_point_info
from cnnkit.plugins import PluginHost

__all__ = ["CliResult", "plugin_host", "run_cli", "tiny_image_folder"]


class CliResult(NamedTuple):
    """What :func:`run_cli` gives: the exit code and everything written to stdout and stderr."""

    code: int
    out: str
    err: str


class _IsolatedHost(PluginHost):
    """A host whose plugins are the built-ins, then (with ``entry_points``) the installed ones,
    then the given objects, in that precedence: the order an installed plugin would have."""

    def __init__(self, extra: Sequence[tuple[PluginInfo, object]], **options: Any) -> None:
        super().__init__(**options)
        self._extra = list(extra)

    def _add_extra(self, ready: list[tuple[PluginInfo, object]]) -> None:
        loaded = {info.module for info in self.plugins.values()}
        for info, plugin in self._extra:
            if info.module not in loaded:  # installed and loaded already (third_party=True)
                self._add(info, functools.partial(lambda p: p, plugin), ready)


def _describe(plugin: object) -> PluginInfo:
    """How the host names ``plugin``: as its installed entry point does when it is installed (so
    entries carry the same plugin name), else by its module name."""
    if isinstance(plugin, types.ModuleType):
        module = plugin.__name__
    else:
        owner = plugin if isinstance(plugin, type) else type(plugin)
        module = f"{owner.__module__}.{owner.__qualname__}"
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.value == module:
            return entry_point_info(ep)
    version = str(getattr(plugin, "__version__", "0"))
    return PluginInfo(module, module, version, module)


def plugin_host(*plugins: object, third_party: bool = False, strict: bool = True) -> PluginHost:
    """A plugin host with cnnkit's built-ins and ``plugins`` (modules, or objects with
    ``@hookimpl`` methods), whatever else is installed; ``third_party=True`` adds the installed
    plugins as the ``cnnkit`` command loads them. ``strict`` (the default) raises
    ``cnnkit.errors.PluginError`` on the first plugin failure, with the message users would see as
    a warning; ``strict=False`` records failures in ``host.plugins[name].errors`` instead.

    The host loads lazily: ``host.registry("models").get("mynet")`` is the entry cnnkit would use,
    ``entry.create(...)`` calls its factory and checks what it returns."""
    described = [(_describe(plugin), plugin) for plugin in plugins]
    names = [info.name for info, _ in described]
    if len(set(names)) != len(names):
        raise ValueError(f"plugin_host() was given the same plugin twice: {', '.join(names)}")
    return _IsolatedHost(described, entry_points=third_party, strict=strict, warn=_warn_to_stderr)


def _warn_to_stderr(message: str) -> None:
    print(f"cnnkit: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def _environment(env: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``env`` applied (None removes a variable), restored afterwards."""
    saved = {key: os.environ.get(key) for key in env}
    try:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _text_stream() -> io.TextIOWrapper:
    """A text stream with a ``buffer``, as the real stdout has (some writers need the bytes side)."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="", write_through=True)


def _read(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8")


def run_cli(*args: str, env: Mapping[str, str | None] | None = None, plugins: Sequence[object] | None = None,
            third_party: bool = False) -> CliResult:
    """Run ``cnnkit *args`` in this process and return ``(code, out, err)``.

    Plugins are loaded afresh for the call (``env`` may set ``CNNKIT_PLUGINS`` and the other
    switches; a value of None unsets one), and forgotten after it. With ``plugins``, cnnkit sees
    the built-ins and those objects only (plus the installed plugins with ``third_party=True``),
    loaded strictly as :func:`plugin_host` does, so a failing plugin fails the command; without
    it, every installed plugin, as the ``cnnkit`` command does. A strategy with
    ``distributed=True`` starts worker processes, which see installed plugins only."""
    from cnnkit.cli import main

    out, err = _text_stream(), _text_stream()
    with _environment(env or {}):
        _plugins.reset_host()
        if plugins is not None:
            _plugins._host = plugin_host(*plugins, third_party=third_party)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            _plugins.reset_host()
    return CliResult(code, _read(out), _read(err))


def tiny_image_folder(path: str | os.PathLike[str], classes: int = 2, per_class: int = 8, size: int = 16,
                      channels: int = 3, seed: int = 0) -> Path:
    """Write ``classes`` folders (``class0``, ``class1``, ...) of ``per_class`` PNG images each
    under ``path`` (ImageFolder layout: ``cnnkit train --data PATH`` reads it) and return ``path``.

    Each class is a noisy square of its own shade (a colour on 3 channels), so a model learns it
    in an epoch or two; the noise depends on ``seed`` only."""
    import numpy as np
    from PIL import Image

    if classes < 1 or per_class < 1 or size < 1 or channels not in (1, 3):
        raise ValueError("tiny_image_folder needs classes, per_class and size of at least 1, and channels 1 or 3")
    root = Path(path)
    rng = np.random.default_rng(seed)
    for label in range(classes):
        level = 30 + 195 * label // max(classes - 1, 1)
        shade = np.roll(np.array([level, 255 - level, 128]), label) if channels == 3 else np.array([level])
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            noise = rng.normal(0, 12, (size, size, channels))
            pixels = np.clip(shade[:channels] + noise, 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels[..., 0], "L") if channels == 1 else Image.fromarray(pixels, "RGB")
            image.save(folder / f"img{index:03d}.png")
    return root
