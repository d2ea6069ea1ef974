"""Loading plugins: the built-in ones and those installed under the ``cnnkit`` entry-point group.

Built-ins go through exactly the same path as third-party plugins. A plugin that fails to import,
declares a ``CNNKIT_API`` range that excludes ``cnnkit.contracts.API_VERSION``, names an unknown
hook, raises while registering, or registers a name another plugin already has is recorded with
its error and skipped; the rest of cnnkit keeps working.

Hooks are called through pluggy's own hook caller, each plugin behind a proxy that catches its
failures (``cnnkit.plugin_calls``). Plugins are registered in reverse precedence (pluggy calls the
last registered first), so plain implementations run built-ins first, then third-party plugins in
entry-point name order; as the first registration of a name wins, built-ins keep their names
unless a plugin uses ``tryfirst``. Which installed plugins load is up to the environment switches
of ``cnnkit.plugin_selection`` (``CNNKIT_NO_PLUGINS``, ``CNNKIT_PLUGINS``, ...).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pluggy

from cnnkit import __version__, console, hookspecs
from cnnkit.contracts._api import API_VERSION
from cnnkit.errors import PluginError
from cnnkit.plugin_calls import HookCall, PluginCalls
from cnnkit.plugin_selection import (
    ENTRY_POINT_GROUP,
    NO_PLUGINS_ENV,
    STRICT_ENV,
    PluginInfo,
    disabled_note,
    entry_point_info,
    env_flag,
    mark_left_out,
    no_plugins_note,
)
from cnnkit.registry import KIND_NOUNS, DuplicateNameError, Registry, note_unloaded_plugins_with, suggest

API_ATTRIBUTE = "CNNKIT_API"
KINDS = tuple(KIND_NOUNS)

BUILTIN_PLUGINS = (
    "cnnkit.builtins.commands",
    "cnnkit.builtins.models",
    "cnnkit.builtins.datasets",
    "cnnkit.builtins.augmentations",
    "cnnkit.builtins.initializers",
    "cnnkit.builtins.strategies",
    "cnnkit.builtins.callbacks",
)


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
        self._calls = PluginCalls(self._fail)
        self._loaded = False

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        ready: list[tuple[PluginInfo, object]] = []
        for module_name in BUILTIN_PLUGINS:
            info = PluginInfo(module_name.removeprefix("cnnkit."), module_name, __version__, None)
            self._add(info, functools.partial(importlib.import_module, module_name), ready)
        if self.entry_points:
            found = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value))
            infos = [(entry_point_info(ep), ep) for ep in found]
            mark_left_out([info for info, _ in infos], self.warn)
            for info, ep in infos:
                self._add(info, ep.load, ready)
        self._add_extra(ready)
        for info, proxy in reversed(ready):  # pluggy calls the last registered first
            self.pm.register(proxy, name=info.name)
            info.loaded = True

    def _add_extra(self, ready: list[tuple[PluginInfo, object]]) -> None:
        """Plugins given by other means than entry points, after them (``cnnkit.testing``)."""

    def _add(self, info: PluginInfo, load: Callable[[], Any], ready: list[tuple[PluginInfo, object]]) -> None:
        """Record the plugin ``info`` and, unless its entry-point name is taken or it is left out,
        load it and append it to ``ready`` with its proxy if it is fit to register."""
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
        if not info.disabled:
            proxy = self._proxy_or_reported(info, load)
            if proxy is not None:
                ready.append((info, proxy))

    def _proxy_or_reported(self, info: PluginInfo, load: Callable[[], Any]) -> object | None:
        """The proxy to register for the plugin ``load()`` gives, or None once it is reported
        unfit: it fails to load, its API range excludes cnnkit's, pluggy refuses an
        implementation, or it implements a hook cnnkit does not have."""
        plugin = self._loaded_or_reported(info, load)
        if plugin is None or not self._api_fits(info, plugin):
            return None
        if self._loaded_or_reported(info, lambda: self.pm.register(plugin, name=info.name)) is None:
            return None  # pluggy validates every implementation
        callers = self.pm.get_hookcallers(plugin) or []
        proxy = self._calls.proxy(info, plugin, callers)
        self.pm.unregister(plugin)
        unknown = [caller.name for caller in callers if not caller.has_spec()]
        known = [f"register_{kind}" for kind in KINDS]
        for name in unknown:
            close = suggest(name, known)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self._fail(info, f"implements unknown hook '{name}'{hint}; the plugin is skipped")
        return None if unknown else proxy

    def _loaded_or_reported(self, info: PluginInfo, load: Callable[[], Any]) -> Any:
        """``load()``, or None after reporting that the plugin failed to load."""
        try:
            with contextlib.redirect_stdout(sys.stderr):  # a plugin's prints must not spoil --json
                return load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit() or a framework's own exception must not end cnnkit
            self._fail(info, f"failed to load: {type(exc).__name__}: {exc}")
            return None

    def _api_fits(self, info: PluginInfo, plugin: object) -> bool:
        """Whether the ``CNNKIT_API`` range ``plugin`` declares (if any) includes ``API_VERSION``."""
        declared = getattr(plugin, API_ATTRIBUTE, None)
        if declared is None:
            return True
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            if not isinstance(declared, str):
                raise InvalidSpecifier(declared)
            accepted = SpecifierSet(declared)
        except InvalidSpecifier:
            self._fail(info, f"declares {API_ATTRIBUTE} = {declared!r}, which is not a version range such as "
                             "'>=1.0,<2'; the plugin is skipped")
            return False
        info.api = declared
        if accepted.contains(API_VERSION, prereleases=True):
            return True
        self._fail(info, f"is written for cnnkit API {declared}, and this cnnkit provides API {API_VERSION}; "
                         "the plugin is skipped (install a version of it made for this cnnkit)")
        return False

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
            with self._calls.call(kind) as call:
                getattr(self.pm.hook, f"register_{kind}")(register=self._calls.register_function(kind))
            self._keep(call, registry)
        return self._registries[kind]

    def _keep(self, call: HookCall, registry: Registry) -> None:
        """The entries of plugins that did not fail, in the order registered: the first of a name wins."""
        for info, entry in call.entries:
            if info.name in call.failed:
                continue
            try:
                registry.add(entry)
            except DuplicateNameError as exc:
                self._fail(
                    info,
                    f"registers {registry.noun} '{entry.name}', already registered by plugin "
                    f"'{exc.existing.plugin}'; keeping that one",
                )
                continue
            info.registers.setdefault(call.kind, []).append(entry.name)

    def build_all(self) -> None:
        for kind in KINDS:
            self.registry(kind)


def unloaded_plugins_note(name: str) -> str:
    """For an unknown name: which installed plugin that was left unloaded (``CNNKIT_NO_PLUGINS``,
    ``CNNKIT_PLUGINS``, ``CNNKIT_DISABLE_PLUGINS``) may provide ``name``. Otherwise empty."""
    if not env_flag(NO_PLUGINS_ENV) or (_host is not None and _host.entry_points):
        return disabled_note(name, _host.plugins.values()) if _host is not None else ""
    return no_plugins_note(name)


note_unloaded_plugins_with(unloaded_plugins_note)

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
