"""Loading plugins: the built-in ones and those installed under the ``cnnkit`` entry-point group.

Built-ins go through exactly the same path as third-party plugins. A plugin that fails to import,
declares a ``CNNKIT_API`` range that excludes ``cnnkit.contracts.API_VERSION``, names an unknown
hook, raises while registering, or registers a name another plugin already has is recorded with
its error and skipped; the rest of cnnkit keeps working.

Hooks are called through pluggy's own hook caller, so ``tryfirst``/``trylast`` order and wrappers
work as pluggy documents. What cnnkit registers with pluggy is, for each plugin, a proxy whose
implementations call the plugin's with its failures caught: a plugin that raises is reported and
its entries of that kind are dropped, and the call goes on to the next implementation. Plugins
are registered in reverse precedence (pluggy calls the last registered first), so plain
implementations run built-ins first, then third-party plugins in entry-point name order; as the
first registration of a name wins, built-ins keep their names unless a plugin uses ``tryfirst``.

Environment switches:

- ``CNNKIT_NO_PLUGINS=1`` loads no third-party plugins (recovery from a broken install);
- ``CNNKIT_PLUGINS=a,b`` loads only those third-party plugins, ``CNNKIT_DISABLE_PLUGINS=a,b``
  all but those (by entry-point or distribution name; an unknown name is warned about);
- ``CNNKIT_STRICT_PLUGINS=1`` turns any plugin failure into a fatal error (for plugin authors).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import types
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, cast

import pluggy

from cnnkit import __version__, console, hookimpl, hookspecs
from cnnkit.contracts import API_VERSION, Registration
from cnnkit.errors import PluginError
from cnnkit.registry import KIND_NOUNS, DuplicateNameError, Entry, Registry, make_entry, suggest

ENTRY_POINT_GROUP = "cnnkit"
NO_PLUGINS_ENV = "CNNKIT_NO_PLUGINS"
STRICT_ENV = "CNNKIT_STRICT_PLUGINS"
ONLY_ENV = "CNNKIT_PLUGINS"
DISABLE_ENV = "CNNKIT_DISABLE_PLUGINS"
API_ATTRIBUTE = "CNNKIT_API"
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


def env_names(name: str) -> list[str]:
    """The comma-separated names in environment variable ``name``."""
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


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
    api: str | None = None
    """The ``CNNKIT_API`` range the plugin declares (None: it declares none)."""
    disabled: str | None = None
    """Why it was not loaded although installed: the environment variable that left it out."""

    @property
    def builtin(self) -> bool:
        return self.distribution is None

    def names(self) -> set[str]:
        """The names ``CNNKIT_PLUGINS`` and ``CNNKIT_DISABLE_PLUGINS`` know it by."""
        return {self.name.lower(), (self.distribution or self.name).lower()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "version": self.version,
            "builtin": self.builtin,
            "distribution": self.distribution,
            "api": self.api,
            "ok": not self.errors,
            "errors": list(self.errors),
            "registers": {kind: list(names) for kind, names in self.registers.items()},
            "disabled": self.disabled,
        }


@dataclass
class HookCall:
    """One call of a ``register_<kind>`` hook: the entries in the order they were registered, the
    plugins running (innermost last: whose ``register`` call it is) and those that failed."""

    kind: str
    entries: list[tuple[PluginInfo, Entry]] = field(default_factory=list)
    running: list[PluginInfo] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)


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
        self._calls: dict[str, HookCall] = {}
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
            infos = [(self._info(ep), ep) for ep in found]
            self._select([info for info, _ in infos])
            for info, ep in infos:
                self._add(info, ep.load, ready)
        self._add_extra(ready)
        for info, proxy in reversed(ready):  # pluggy calls the last registered first
            self.pm.register(proxy, name=info.name)
            info.loaded = True

    def _add_extra(self, ready: list[tuple[PluginInfo, object]]) -> None:
        """Plugins given by other means than entry points, after them (``cnnkit.testing``)."""

    @staticmethod
    def _info(ep: metadata.EntryPoint) -> PluginInfo:
        dist = getattr(ep, "dist", None)
        return PluginInfo(ep.name, ep.value, dist.version if dist else "?", dist.metadata["Name"] if dist else ep.value)

    def _select(self, infos: list[PluginInfo]) -> None:
        """Mark the plugins ``CNNKIT_PLUGINS`` leaves out or ``CNNKIT_DISABLE_PLUGINS`` names."""
        only, disabled = env_names(ONLY_ENV), env_names(DISABLE_ENV)
        known = {name for info in infos for name in info.names()}
        for variable, names in ((ONLY_ENV, only), (DISABLE_ENV, disabled)):
            for name in names:
                if name.lower() not in known:
                    self.warn(unknown_plugin_name(variable, name, infos))
        wanted = {name.lower() for name in only}
        unwanted = {name.lower() for name in disabled}
        for info in infos:
            if only and not info.names() & wanted:
                info.disabled = f"not in {ONLY_ENV}"
            elif info.names() & unwanted:
                info.disabled = f"in {DISABLE_ENV}"

    def _add(self, info: PluginInfo, load: Callable[[], Any], ready: list[tuple[PluginInfo, object]]) -> None:
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
        if info.disabled:
            return
        plugin = self._loaded_or_reported(info, load)
        if plugin is None or not self._api_fits(info, plugin):
            return
        if self._loaded_or_reported(info, lambda: self.pm.register(plugin, name=info.name)) is None:
            return  # pluggy validates every implementation
        callers = self.pm.get_hookcallers(plugin) or []
        proxy = self._proxy(info, plugin, callers)
        self.pm.unregister(plugin)
        unknown = [caller.name for caller in callers if not caller.has_spec()]
        known = [f"register_{kind}" for kind in KINDS]
        for name in unknown:
            close = suggest(name, known)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self._fail(info, f"implements unknown hook '{name}'{hint}; the plugin is skipped")
        if not unknown:
            ready.append((info, proxy))

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

    def _proxy(self, info: PluginInfo, plugin: object, callers: list[pluggy.HookCaller]) -> object:
        """What is registered with pluggy for ``plugin``: its implementations, each behind a shim
        that attributes registrations to it and catches its failures, with pluggy's options."""
        proxy = types.SimpleNamespace()
        for caller in callers:
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                kind = caller.name.removeprefix("register_")
                shim = self._wrapper_shim(info, kind, impl) if impl.wrapper or impl.hookwrapper else self._shim(info, kind, impl)
                marker = hookimpl(wrapper=impl.wrapper, hookwrapper=impl.hookwrapper, tryfirst=impl.tryfirst,
                                  trylast=impl.trylast)
                setattr(proxy, caller.name, marker(shim))
        return proxy

    @staticmethod
    def _arguments(impl: pluggy.HookImpl, register: object) -> tuple[list[object], dict[str, object]]:
        """``register`` passed as pluggy passes it: positionally or by keyword, or not at all."""
        args = [register] if "register" in impl.argnames else []
        kwargs = {"register": register} if "register" in impl.kwargnames else {}
        return args, kwargs

    def _shim(self, info: PluginInfo, kind: str, impl: pluggy.HookImpl) -> Callable[[object], Registration]:
        def run(register: object) -> Registration:
            call = self._calls[kind]
            start = len(call.entries)
            args, kwargs = self._arguments(impl, register)
            error = self._attributed(info, call, lambda: impl.function(*args, **kwargs))
            return Registration(info.name, tuple(entry.name for _, entry in call.entries[start:]), error)

        return run

    def _wrapper_shim(self, info: PluginInfo, kind: str, impl: pluggy.HookImpl) -> Callable[[object], Generator[None, Any, Any]]:
        """A wrapper's shim: a generator that runs the wrapper's code before and after its ``yield``
        attributed to it, its failures caught, and yields exactly once itself whatever it does."""

        def run(register: object) -> Generator[None, Any, Any]:
            call = self._calls[kind]
            args, kwargs = self._arguments(impl, register)
            inner: list[Generator[None, Any, Any]] = []

            def start() -> None:
                generator = cast(Generator[None, Any, Any], impl.function(*args, **kwargs))
                try:
                    next(generator)
                except StopIteration:
                    raise RuntimeError(f"its wrapper of register_{kind} returned without yielding") from None
                inner.append(generator)

            started = not self._attributed(info, call, start)
            outcome = yield
            if not started:
                return outcome
            result = [outcome]

            def finish() -> None:
                try:
                    inner[0].send(outcome)
                except StopIteration as stop:
                    result[0] = stop.value if impl.wrapper else outcome
                    return
                inner[0].close()
                raise RuntimeError(f"its wrapper of register_{kind} yielded twice")

            self._attributed(info, call, finish)
            return result[0]

        return run

    def _attributed(self, info: PluginInfo, call: HookCall, run: Callable[[], object]) -> str:
        """Run plugin code whose ``register`` calls are ``info``'s; on failure report it, drop its
        entries of this kind and return the error (else "")."""
        call.running.append(info)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                run()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            message = f"raised while registering {call.kind}: {type(exc).__name__}: {exc}"
            call.failed.add(info.name)
            self._fail(info, message)
            return message
        finally:
            call.running.pop()
        return ""

    def _fail(self, info: PluginInfo, message: str) -> None:
        message = " ".join(message.split())  # one line, whatever the exception's text
        info.errors.append(message)
        owner = f" ({info.distribution})" if info.distribution and info.distribution != info.name else ""
        text = f"plugin '{info.name}'{owner} {message}"
        if self.strict:
            raise PluginError(f"{text} ({STRICT_ENV} is set)")
        self.warn(f"{text}. See 'cnnkit plugins'; {NO_PLUGINS_ENV}=1 loads no third-party plugins.")

    def _register(self, kind: str) -> Callable[..., None]:
        """The ``register`` the ``register_<kind>`` hook receives (typed by the kind's ``Register``
        protocol in ``cnnkit.contracts``); entries are kept once every implementation has run."""

        def register(name: str, factory: object, *, help: str = "", **metadata: Any) -> None:
            call = self._calls.get(kind)
            if call is None or not call.running:
                raise RuntimeError(f"register() for {kind} was called outside the register_{kind} hook")
            info = call.running[-1]
            call.entries.append((info, make_entry(kind, name, factory, info.name, help, metadata)))

        return register

    def registry(self, kind: str) -> Registry:
        """The registry for ``kind``, asking every plugin to fill it on first use."""
        if kind not in KIND_NOUNS:
            raise KeyError(kind)
        if kind not in self._registries:
            self.load()
            registry = Registry(kind)
            self._registries[kind] = registry
            call = self._calls[kind] = HookCall(kind)
            try:
                getattr(self.pm.hook, f"register_{kind}")(register=self._register(kind))
            finally:
                del self._calls[kind]
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


def unknown_plugin_name(variable: str, name: str, infos: Iterable[PluginInfo]) -> str:
    """One line for a name in ``CNNKIT_PLUGINS``/``CNNKIT_DISABLE_PLUGINS`` that no installed plugin has."""
    names = sorted({info.name for info in infos})
    close = suggest(name, names + sorted({info.distribution or "" for info in infos} - {""}))
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    builtin = " (built-in plugins are always loaded)" if name.lower().startswith("builtins.") else ""
    installed = f"installed: {', '.join(names)}" if names else "no third-party plugin is installed"
    return f"{variable} names '{name}', which is not an installed plugin{hint}{builtin}; {installed}."


def installed_plugins() -> dict[str, str]:
    """Entry-point name -> distribution of each installed third-party plugin; loads none of them."""
    installed: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        installed.setdefault(ep.name, dist.metadata["Name"] if dist else ep.value)
    return installed


def _short(distribution: str) -> str:
    return distribution.lower().removeprefix("cnnkit-").removeprefix("cnnkit_")


def unloaded_plugins_note(name: str) -> str:
    """For an unknown name: which installed plugin that was left unloaded (``CNNKIT_NO_PLUGINS``,
    ``CNNKIT_PLUGINS``, ``CNNKIT_DISABLE_PLUGINS``) may provide ``name``. Otherwise empty."""
    if not env_flag(NO_PLUGINS_ENV) or (_host is not None and _host.entry_points):
        return _disabled_note(name)
    installed = installed_plugins()
    if not installed:
        return f" ({NO_PLUGINS_ENV} is set; no third-party plugin is installed.)"
    likely = [ep for ep, dist in installed.items() if name.lower() in (ep.lower(), _short(dist))]
    if likely:
        shown = " and ".join(f"'{ep}' ({installed[ep]})" for ep in likely)
        return (f" {NO_PLUGINS_ENV} is set, so third-party plugins were not loaded; the installed plugin {shown} "
                f"may provide '{name}': unset {NO_PLUGINS_ENV} to use it.")
    shown = ", ".join(f"'{ep}' ({dist})" for ep, dist in sorted(installed.items()))
    many = len(installed) > 1
    return f" ({NO_PLUGINS_ENV} is set: the installed third-party plugin{'s' * many} {shown} {'were' if many else 'was'} not loaded.)"


def _disabled_note(name: str) -> str:
    if _host is None:
        return ""
    likely = [info for info in _host.plugins.values()
              if info.disabled and name.lower() in (info.name.lower(), _short(info.distribution or ""))]
    return "".join(f" The installed plugin '{info.name}' ({info.distribution}) may provide '{name}'; it was not loaded "
                   f"({info.disabled})." for info in likely)


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
