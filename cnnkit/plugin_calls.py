"""Calling the plugins' ``register_<kind>`` hooks with each plugin's failures caught and its
registrations attributed to it.

What cnnkit registers with pluggy is, for each plugin, a proxy whose implementations call the
plugin's (the shims made here), so ``tryfirst``/``trylast`` order and wrappers work as pluggy
documents. A shim attributes the ``register`` calls made while it runs to its plugin; a plugin
that raises is reported and its entries of that kind are dropped, and the call goes on to the
next implementation.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pluggy

from cnnkit import hookimpl
from cnnkit.contracts._registration import Registration
from cnnkit.plugin_selection import PluginInfo
from cnnkit.registry import Entry, make_entry


@dataclass
class HookCall:
    """One call of a ``register_<kind>`` hook: the entries in the order they were registered, the
    plugins running (innermost last: whose ``register`` call it is) and those that failed."""

    kind: str
    entries: list[tuple[PluginInfo, Entry]] = field(default_factory=list)
    running: list[PluginInfo] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)


class PluginCalls:
    """The hook calls under way, and the proxies and shims that run plugin code within them.

    ``fail(info, message)`` reports a plugin's failure (and raises when failures are fatal)."""

    def __init__(self, fail: Callable[[PluginInfo, str], None]) -> None:
        self.fail = fail
        self._calls: dict[str, HookCall] = {}

    @contextlib.contextmanager
    def call(self, kind: str) -> Iterator[HookCall]:
        """The call of ``register_<kind>`` under way while the block runs (it gathers the entries)."""
        call = self._calls[kind] = HookCall(kind)
        try:
            yield call
        finally:
            del self._calls[kind]

    def register_function(self, kind: str) -> Callable[..., None]:
        """The ``register`` the ``register_<kind>`` hook receives (typed by the kind's ``Register``
        protocol in ``cnnkit.contracts``); it records each entry for the plugin whose code runs."""

        def register(name: str, factory: object, *, help: str = "", **metadata: Any) -> None:
            call = self._calls.get(kind)
            if call is None or not call.running:
                raise RuntimeError(f"register() for {kind} was called outside the register_{kind} hook")
            info = call.running[-1]
            call.entries.append((info, make_entry(kind, name, factory, info.name, help, metadata)))

        return register

    def proxy(self, info: PluginInfo, plugin: object, callers: list[pluggy.HookCaller]) -> object:
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
            self.fail(info, message)
            return message
        finally:
            call.running.pop()
        return ""
