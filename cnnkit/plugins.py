"""Loading plugins: the built-in ones and those installed under the ``cnnkit`` entry-point group.

Built-ins go through exactly the same path as third-party plugins. A plugin that fails to import,
names an unknown hook, raises while registering, or registers a name another plugin already has is
recorded with its error and skipped; the rest of cnnkit keeps working. Two environment switches:

- ``CNNKIT_NO_PLUGINS=1`` loads no third-party plugins (recovery from a broken install);
- ``CNNKIT_STRICT_PLUGINS=1`` turns any plugin failure into a fatal error (for plugin authors).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import pluggy

from cnnkit import __version__, console, hookspecs
from cnnkit.errors import PluginError
from cnnkit.registry import KIND_NOUNS, DuplicateNameError, Entry, Registry, suggest

ENTRY_POINT_GROUP = "cnnkit"
NO_PLUGINS_ENV = "CNNKIT_NO_PLUGINS"
STRICT_ENV = "CNNKIT_STRICT_PLUGINS"
KINDS = tuple(KIND_NOUNS)

BUILTIN_PLUGINS = (
    "cnnkit.builtins.commands",
    "cnnkit.builtins.models",
    "cnnkit.builtins.datasets",
    "cnnkit.builtins.augmentations",
    "cnnkit.builtins.initializers",
    "cnnkit.builtins.strategies",
)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str
    distribution: str | None
    errors: list[str] = field(default_factory=list)
    registers: dict[str, list[str]] = field(default_factory=dict)
    loaded: bool = False
    """Registered with the plugin manager, so its hooks are asked to fill the registries."""

    @property
    def builtin(self) -> bool:
        return self.distribution is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "version": self.version,
            "builtin": self.builtin,
            "distribution": self.distribution,
            "ok": not self.errors,
            "errors": list(self.errors),
            "registers": {kind: list(names) for kind, names in self.registers.items()},
        }


def _first_doc_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


class PluginHost:
    """One plugin manager plus the registries its plugins fill, built lazily per kind."""

    def __init__(
        self,
        *,
        entry_points: bool | None = None,
        strict: bool | None = None,
        warn: Callable[[str], None] | None = None,
    ):
        self.entry_points = (not env_flag(NO_PLUGINS_ENV)) if entry_points is None else entry_points
        self.strict = env_flag(STRICT_ENV) if strict is None else strict
        self.warn = warn or console.warn
        self.pm = pluggy.PluginManager("cnnkit")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] = {}
        self._loaded = False

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module_name in BUILTIN_PLUGINS:
            info = PluginInfo(module_name.removeprefix("cnnkit."), module_name, __version__, None)
            self._add(info, functools.partial(importlib.import_module, module_name))
        if self.entry_points:
            found = metadata.entry_points(group=ENTRY_POINT_GROUP)
            for ep in sorted(found, key=lambda ep: (ep.name, ep.value)):
                dist = getattr(ep, "dist", None)
                info = PluginInfo(
                    ep.name,
                    ep.value,
                    dist.version if dist else "?",
                    dist.metadata["Name"] if dist else ep.value,
                )
                self._add(info, ep.load)

    def _add(self, info: PluginInfo, load: Callable[[], Any]) -> None:
        key = info.name
        if key in self.plugins:
            taken = self.plugins[key]
            key = f"{info.name} ({info.distribution or info.module})"
            self.plugins[key] = info
            self._fail(
                info,
                f"uses the entry-point name '{info.name}', already used by "
                f"{taken.distribution or taken.module}; it is skipped (one of the two must be renamed)",
            )
            return
        self.plugins[key] = info
        try:
            with contextlib.redirect_stdout(sys.stderr):  # a plugin's prints must not spoil --json
                plugin = load()
                self.pm.register(plugin, name=info.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit() or a framework's own exception must not end cnnkit
            self._fail(info, f"failed to load: {type(exc).__name__}: {exc}")
            return
        info.loaded = True
        unknown = [caller.name for caller in self.pm.get_hookcallers(plugin) or [] if not caller.has_spec()]
        if unknown:
            self.pm.unregister(plugin)
            info.loaded = False
            known = [f"register_{kind}" for kind in KINDS]
            for name in unknown:
                close = suggest(name, known)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self._fail(info, f"implements unknown hook '{name}'{hint}; the plugin is skipped")

    def _fail(self, info: PluginInfo, message: str) -> None:
        message = " ".join(message.split())  # one line, whatever the exception's text
        info.errors.append(message)
        owner = f" ({info.distribution})" if info.distribution and info.distribution != info.name else ""
        text = f"plugin '{info.name}'{owner} {message}"
        if self.strict:
            raise PluginError(f"{text} ({STRICT_ENV} is set)")
        self.warn(f"{text}. See 'cnnkit plugins'; {NO_PLUGINS_ENV}=1 loads no third-party plugins.")

    def registry(self, kind: str) -> Registry:
        """The registry for ``kind``, asking every plugin to fill it on first use."""
        if kind not in KIND_NOUNS:
            raise KeyError(kind)
        if kind not in self._registries:
            self.load()
            registry = Registry(kind)
            self._registries[kind] = registry
            impls = {impl.plugin_name: impl for impl in getattr(self.pm.hook, f"register_{kind}").get_hookimpls()}
            for info in self.plugins.values():
                if info.loaded and info.name in impls:
                    self._collect(kind, registry, info, impls[info.name].function)
        return self._registries[kind]

    def _collect(self, kind: str, registry: Registry, info: PluginInfo, hook: Callable[..., Any]) -> None:
        """Run one plugin's hook; keep its entries only if the whole hook succeeds."""
        staged: list[Entry] = []

        def register(name: str, factory: Callable[..., Any], *, help: str = "", **meta: Any) -> None:
            if not isinstance(name, str) or not name or any(c.isspace() or not c.isprintable() for c in name):
                raise ValueError(f"{KIND_NOUNS[kind]} name must be a non-empty string without spaces, got {name!r}")
            if not callable(factory):
                raise TypeError(f"factory for {KIND_NOUNS[kind]} '{name}' is not callable")
            if name.endswith("/*") and not (callable(meta.get("lister")) and callable(meta.get("describe"))):
                raise ValueError(f"family '{name}' needs lister= and describe= callables")
            staged.append(Entry(kind, name, factory, info.name, help or _first_doc_line(factory), meta))

        try:
            with contextlib.redirect_stdout(sys.stderr):
                hook(register=register)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self._fail(info, f"raised while registering {kind}: {type(exc).__name__}: {exc}")
            return
        for entry in staged:
            try:
                registry.add(entry)
            except DuplicateNameError as exc:
                self._fail(
                    info,
                    f"registers {registry.noun} '{entry.name}', already registered by plugin "
                    f"'{exc.existing.plugin}'; keeping that one",
                )
                continue
            info.registers.setdefault(kind, []).append(entry.name)

    def build_all(self) -> None:
        for kind in KINDS:
            self.registry(kind)


def installed_plugins() -> dict[str, str]:
    """Entry-point name -> distribution of each installed third-party plugin; loads none of them."""
    installed: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        installed.setdefault(ep.name, dist.metadata["Name"] if dist else ep.value)
    return installed


def unloaded_plugins_note(name: str) -> str:
    """For an unknown name while ``CNNKIT_NO_PLUGINS`` is set: that it is, and which installed
    plugin may provide ``name`` (by its entry-point or distribution name), else which were not
    loaded. Otherwise empty."""
    if not env_flag(NO_PLUGINS_ENV) or (_host is not None and _host.entry_points):
        return ""
    installed = installed_plugins()
    if not installed:
        return f" ({NO_PLUGINS_ENV} is set; no third-party plugin is installed.)"
    likely = [ep for ep, dist in installed.items()
              if name.lower() in (ep.lower(), dist.lower().removeprefix("cnnkit-").removeprefix("cnnkit_"))]
    if likely:
        shown = " and ".join(f"'{ep}' ({installed[ep]})" for ep in likely)
        return (f" {NO_PLUGINS_ENV} is set, so third-party plugins were not loaded; the installed plugin {shown} "
                f"may provide '{name}': unset {NO_PLUGINS_ENV} to use it.")
    shown = ", ".join(f"'{ep}' ({dist})" for ep, dist in sorted(installed.items()))
    many = len(installed) > 1
    return f" ({NO_PLUGINS_ENV} is set: the installed third-party plugin{'s' * many} {shown} {'were' if many else 'was'} not loaded.)"


_host: PluginHost | None = None


def get_host() -> PluginHost:
    global _host
    if _host is None:
        _host = PluginHost()
    return _host


def reset_host() -> None:
    """Forget the loaded plugins (tests change the environment between CLI invocations)."""
    global _host
    _host = None


def registry(kind: str) -> Registry:
    return get_host().registry(kind)
