"""pluggy as pluggy: tryfirst/trylast order, wrappers, and per-plugin isolation (issue 16, deliverable 3)."""

from __future__ import annotations

import sys

import pytest

from cnnkit.contracts import Registration
from cnnkit.errors import PluginError
from cnnkit.plugins import PluginHost

SHARED = """
    from cnnkit import hookimpl

    @hookimpl{options}
    def register_models(register):
        register("{name}", lambda **kw: None, help=__name__)
"""


def plugin(name="shared-net", options=""):
    return SHARED.replace("{options}", options).replace("{name}", name)


def quiet_host(**kwargs):
    warnings: list[str] = []
    return PluginHost(warn=warnings.append, **kwargs), warnings


def test_a_tryfirst_plugin_takes_a_contested_name_and_the_plain_one_is_the_duplicate(install_plugin):
    install_plugin("cnnkit-alpha", plugin())
    install_plugin("cnnkit-zeta", plugin(options="(tryfirst=True)"))
    host, warnings = quiet_host()
    assert host.registry("models").get("shared-net").plugin == "cnnkit-zeta"
    assert host.plugins["cnnkit-alpha"].errors == [
        "registers model 'shared-net', already registered by plugin 'cnnkit-zeta'; keeping that one"]
    assert not host.plugins["cnnkit-zeta"].errors and len(warnings) == 1


def test_a_trylast_plugin_gives_way_to_a_plain_one_whatever_their_names(install_plugin):
    install_plugin("cnnkit-alpha", plugin(options="(trylast=True)"))
    install_plugin("cnnkit-zeta", plugin())
    host, _ = quiet_host()
    assert host.registry("models").get("shared-net").plugin == "cnnkit-zeta"
    assert host.plugins["cnnkit-alpha"].errors and not host.plugins["cnnkit-zeta"].errors


def test_builtins_win_over_plain_plugins_but_a_tryfirst_plugin_takes_a_builtin_name(install_plugin):
    install_plugin("cnnkit-plain", plugin("resnet20"))
    install_plugin("cnnkit-override", plugin("mnist-cnn", "(tryfirst=True)"))
    host, _ = quiet_host()
    models = host.registry("models")
    assert models.get("resnet20").plugin == "builtins.models"
    assert models.get("mnist-cnn").plugin == "cnnkit-override"
    assert host.plugins["builtins.models"].errors == [
        "registers model 'mnist-cnn', already registered by plugin 'cnnkit-override'; keeping that one"]
    assert "resnet20" in host.plugins["builtins.models"].registers["models"]


def test_hooks_are_called_through_the_plugin_manager_in_pluggys_order(install_plugin):
    install_plugin("cnnkit-alpha", plugin("a-net"))
    install_plugin("cnnkit-zeta", plugin("z-net", "(tryfirst=True)"))
    host, _ = quiet_host()
    host.load()
    order = [impl.plugin_name for impl in reversed(host.pm.hook.register_models.get_hookimpls())]
    assert order[:2] == ["cnnkit-zeta", "builtins.models"], "tryfirst, then built-ins"
    assert "cnnkit-alpha" in order[2:] and order[2:] == sorted(order[2:]), "then plain plugins by entry-point name"


WRAPPER = """
    from cnnkit import hookimpl

    SEEN = []

    @hookimpl(wrapper=True)
    def register_models(register):
        register("early-net", lambda **kw: None)
        registrations = yield
        SEEN.extend(registrations)
        register("late-net", lambda **kw: None)
        register("shared-net", lambda **kw: None)
        return registrations
"""


def test_a_wrapper_runs_around_the_others_sees_what_they_registered_and_may_register(install_plugin):
    install_plugin("cnnkit-wrap", WRAPPER)
    install_plugin("cnnkit-plain", plugin())
    host, warnings = quiet_host()
    models = host.registry("models")
    seen = sys.modules["cnnkit_wrap"].SEEN
    assert all(isinstance(r, Registration) for r in seen)
    by_plugin = {r.plugin: r for r in seen}
    assert "mnist-cnn" in by_plugin["builtins.models"].names and by_plugin["cnnkit-plain"].names == ("shared-net",)
    assert "cnnkit-wrap" not in by_plugin, "a wrapper sees the implementations it wraps"
    assert models.get("early-net").plugin == models.get("late-net").plugin == "cnnkit-wrap"
    assert models.get("shared-net").plugin == "cnnkit-plain", "after its yield, a wrapper registers last"
    assert host.plugins["cnnkit-wrap"].errors == [
        "registers model 'shared-net', already registered by plugin 'cnnkit-plain'; keeping that one"]
    assert host.plugins["cnnkit-wrap"].registers == {"models": ["early-net", "late-net"]}


def test_an_old_style_hookwrapper_gets_the_registrations_from_its_outcome(install_plugin):
    install_plugin("cnnkit-old", """
        from cnnkit import hookimpl

        SEEN = []

        @hookimpl(hookwrapper=True)
        def register_datasets(register):
            outcome = yield
            SEEN.extend(outcome.get_result())
    """)
    host, warnings = quiet_host()
    assert "digits" in host.registry("datasets")
    names = {r.plugin: r.names for r in sys.modules["cnnkit_old"].SEEN}
    assert "digits" in names["builtins.datasets"] and warnings == []


def test_a_plugin_that_raises_reports_what_a_wrapper_sees_and_the_call_goes_on(install_plugin):
    install_plugin("cnnkit-wrap", WRAPPER)
    install_plugin("cnnkit-broken", """
        from cnnkit import hookimpl

        @hookimpl(tryfirst=True)
        def register_models(register):
            register("half-net", lambda **kw: None)
            raise RuntimeError("oops")
    """)
    host, _ = quiet_host()
    models = host.registry("models")
    assert "half-net" not in models and "mnist-cnn" in models and "late-net" in models
    [broken] = [r for r in sys.modules["cnnkit_wrap"].SEEN if r.plugin == "cnnkit-broken"]
    assert broken == Registration("cnnkit-broken", ("half-net",), "raised while registering models: RuntimeError: oops")


@pytest.mark.parametrize("body, error", [
    ('raise RuntimeError("before")\n            yield', "raised while registering models: RuntimeError: before"),
    ('register("w-net", lambda **kw: None)\n            yield\n            raise RuntimeError("after")',
     "raised while registering models: RuntimeError: after"),
    ("if False:\n                yield", "raised while registering models: RuntimeError: its wrapper of register_models "
                                        "returned without yielding"),
    ('register("w-net", lambda **kw: None)\n            yield\n            yield',
     "raised while registering models: RuntimeError: its wrapper of register_models yielded twice"),
])
def test_a_broken_wrapper_is_reported_and_skipped_and_the_others_keep_working(install_plugin, body, error):
    install_plugin("cnnkit-badwrap", f"""
        from cnnkit import hookimpl

        @hookimpl(wrapper=True)
        def register_models(register):
            {body}
    """)
    install_plugin("cnnkit-plain", plugin())
    host, warnings = quiet_host()
    models = host.registry("models")
    assert "w-net" not in models and "shared-net" in models and "mnist-cnn" in models
    assert host.plugins["cnnkit-badwrap"].errors == [error] and host.plugins["cnnkit-badwrap"].registers == {}
    assert len(warnings) == 1


def test_a_wrapper_that_is_not_a_generator_fails_to_load(install_plugin):
    install_plugin("cnnkit-notgen", """
        from cnnkit import hookimpl

        @hookimpl(wrapper=True)
        def register_models(register):
            register("x-net", lambda **kw: None)
    """)
    host, _ = quiet_host()
    assert "x-net" not in host.registry("models")
    [error] = host.plugins["cnnkit-notgen"].errors
    assert error.startswith("failed to load: PluginValidationError:") and "not a generator function" in error


def test_strict_mode_makes_a_broken_wrapper_fatal(install_plugin):
    install_plugin("cnnkit-badwrap", """
        from cnnkit import hookimpl

        @hookimpl(wrapper=True)
        def register_models(register):
            raise RuntimeError("before")
            yield
    """)
    with pytest.raises(PluginError, match=r"^plugin 'cnnkit-badwrap' raised while registering models: RuntimeError: before "
                                          r"\(CNNKIT_STRICT_PLUGINS is set\)$"):
        PluginHost(strict=True).registry("models")


def test_broken_plugins_and_wrappers_never_take_the_cli_down(install_plugin, run_cli):
    install_plugin("cnnkit-wrap", WRAPPER)
    install_plugin("cnnkit-badwrap", """
        from cnnkit import hookimpl

        @hookimpl(wrapper=True)
        def register_commands(register):
            raise SystemExit(3)
            yield
    """)
    install_plugin("cnnkit-raiser", """
        from cnnkit import hookimpl

        @hookimpl(tryfirst=True)
        def register_models(register):
            raise KeyError("boom")
    """)
    help_text = run_cli("--help")
    assert help_text.code == 0 and "train" in help_text.out
    assert "plugin 'cnnkit-badwrap' raised while registering commands: SystemExit: 3" in help_text.err
    listing = run_cli("models", "*-net")
    assert listing.code == 0 and "early-net" in listing.out and "late-net" in listing.out
    assert "plugin 'cnnkit-raiser' raised while registering models: KeyError: 'boom'" in listing.err
