"""Which installed plugins cnnkit loads, and what it knows about each plugin.

The environment switches (read by :class:`cnnkit.plugins.PluginHost`):

- ``CNNKIT_NO_PLUGINS=1`` loads no third-party plugins (recovery from a broken install);
- ``CNNKIT_PLUGINS=a,b`` loads only those third-party plugins, ``CNNKIT_DISABLE_PLUGINS=a,b``
  all but those (by entry-point or distribution name; an unknown name is warned about);
- ``CNNKIT_STRICT_PLUGINS=1`` turns any plugin failure into a fatal error (for plugin authors).

When a name is unknown, the notes here say which installed plugin, left unloaded by one of these
switches, may provide it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from cnnkit.registry import suggest

ENTRY_POINT_GROUP = "cnnkit"
NO_PLUGINS_ENV = "CNNKIT_NO_PLUGINS"
STRICT_ENV = "CNNKIT_STRICT_PLUGINS"
ONLY_ENV = "CNNKIT_PLUGINS"
DISABLE_ENV = "CNNKIT_DISABLE_PLUGINS"


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


def entry_point_info(ep: metadata.EntryPoint) -> PluginInfo:
    """What is known of an installed plugin before it is loaded: its name, module and distribution."""
    dist = getattr(ep, "dist", None)
    return PluginInfo(ep.name, ep.value, dist.version if dist else "?", dist.metadata["Name"] if dist else ep.value)


def mark_left_out(infos: list[PluginInfo], warn: Callable[[str], None]) -> None:
    """Mark the plugins ``CNNKIT_PLUGINS`` leaves out or ``CNNKIT_DISABLE_PLUGINS`` names; warn
    about a name in either that no installed plugin has."""
    only, disabled = env_names(ONLY_ENV), env_names(DISABLE_ENV)
    known = {name for info in infos for name in info.names()}
    for variable, names in ((ONLY_ENV, only), (DISABLE_ENV, disabled)):
        for name in names:
            if name.lower() not in known:
                warn(unknown_plugin_name(variable, name, infos))
    wanted = {name.lower() for name in only}
    unwanted = {name.lower() for name in disabled}
    for info in infos:
        if only and not info.names() & wanted:
            info.disabled = f"not in {ONLY_ENV}"
        elif info.names() & unwanted:
            info.disabled = f"in {DISABLE_ENV}"


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


def short_name(distribution: str) -> str:
    """A distribution's name without its ``cnnkit-`` prefix: what it likely registers (``lenet5``)."""
    return distribution.lower().removeprefix("cnnkit-").removeprefix("cnnkit_")


def no_plugins_note(name: str) -> str:
    """For an unknown name while ``CNNKIT_NO_PLUGINS`` is set: the installed plugin that may provide
    it (by its entry-point or short distribution name), else every installed one."""
    installed = installed_plugins()
    if not installed:
        return f" ({NO_PLUGINS_ENV} is set; no third-party plugin is installed.)"
    likely = [ep for ep, dist in installed.items() if name.lower() in (ep.lower(), short_name(dist))]
    if likely:
        shown = " and ".join(f"'{ep}' ({installed[ep]})" for ep in likely)
        return (f" {NO_PLUGINS_ENV} is set, so third-party plugins were not loaded; the installed plugin {shown} "
                f"may provide '{name}': unset {NO_PLUGINS_ENV} to use it.")
    shown = ", ".join(f"'{ep}' ({dist})" for ep, dist in sorted(installed.items()))
    many = len(installed) > 1
    return f" ({NO_PLUGINS_ENV} is set: the installed third-party plugin{'s' * many} {shown} {'were' if many else 'was'} not loaded.)"


def disabled_note(name: str, infos: Iterable[PluginInfo]) -> str:
    """For an unknown name: the plugins among ``infos`` that ``CNNKIT_PLUGINS`` or
    ``CNNKIT_DISABLE_PLUGINS`` left unloaded and whose name it is (else "")."""
    likely = [info for info in infos
              if info.disabled and name.lower() in (info.name.lower(), short_name(info.distribution or ""))]
    return "".join(f" The installed plugin '{info.name}' ({info.distribution}) may provide '{name}'; it was not loaded "
                   f"({info.disabled})." for info in likely)
