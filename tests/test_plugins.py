import json

import pytest

from cnnkit.errors import PluginError
from cnnkit.plugins import BUILTIN_PLUGINS, PluginHost

GOOD_PLUGIN = """
    from cnnkit import hookimpl

    def tiny(*, num_classes=10, in_channels=1):
        from torch import nn
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 8 * 8, num_classes))

    @hookimpl
    def register_models(register):
        register("tiny-net", tiny, help="A tiny net", input_size=(1, 8, 8))
"""


def quiet_host(**kwargs):
    warnings = []
    return PluginHost(warn=warnings.append, **kwargs), warnings


def test_builtins_load_through_the_plugin_path_and_fill_every_registry():
    host, warnings = quiet_host(entry_points=False)
    host.build_all()
    assert [info.module for info in host.plugins.values()] == list(BUILTIN_PLUGINS)
    assert host.registry("models").get("mnist-cnn").plugin == "builtins.models"
    assert "digits" in host.registry("datasets")
    assert "he-normal" in host.registry("initializers")
    assert "random-shift" in host.registry("augmentations")
    assert "single" in host.registry("strategies")
    assert "train" in host.registry("commands")
    assert warnings == []


def test_entry_point_plugin_registers_a_model(install_plugin):
    install_plugin("cnnkit-tiny", GOOD_PLUGIN)
    host, warnings = quiet_host()
    entry = host.registry("models").get("tiny-net")
    assert entry.plugin == "cnnkit-tiny"
    assert entry.metadata["input_size"] == (1, 8, 8)
    import torch

    assert entry.create(num_classes=3, in_channels=1)(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    info = host.plugins["cnnkit-tiny"]
    assert (info.distribution, info.version, info.errors) == ("cnnkit-tiny", "1.0", [])
    assert warnings == []


def test_no_plugins_switch_skips_third_party(install_plugin, monkeypatch):
    install_plugin("cnnkit-tiny", GOOD_PLUGIN)
    monkeypatch.setenv("CNNKIT_NO_PLUGINS", "1")
    host, _ = quiet_host()
    assert "tiny-net" not in host.registry("models")
    assert "mnist-cnn" in host.registry("models")


def test_plugin_that_fails_to_import_is_reported_not_fatal(install_plugin):
    install_plugin("cnnkit-broken", "import does_not_exist_anywhere\n")
    host, warnings = quiet_host()
    assert "mnist-cnn" in host.registry("models")
    errors = host.plugins["cnnkit-broken"].errors
    assert len(errors) == 1 and "ModuleNotFoundError" in errors[0] and "does_not_exist_anywhere" in errors[0]
    assert any("cnnkit-broken" in w and "CNNKIT_NO_PLUGINS" in w for w in warnings)


def test_plugin_that_raises_while_registering_adds_nothing(install_plugin):
    install_plugin(
        "cnnkit-half",
        """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("half-net", lambda: None)
            raise RuntimeError("oops")
        """,
    )
    host, warnings = quiet_host()
    assert "half-net" not in host.registry("models")
    assert host.plugins["cnnkit-half"].errors == ["raised while registering models: RuntimeError: oops"]


def test_name_collision_keeps_the_first_and_names_both_plugins(install_plugin):
    install_plugin(
        "cnnkit-clash",
        """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("mnist-cnn", lambda **kw: "impostor")
            register("clash-net", lambda **kw: "fine")
        """,
    )
    host, warnings = quiet_host()
    models = host.registry("models")
    assert models.get("mnist-cnn").plugin == "builtins.models"
    assert models.get("clash-net").plugin == "cnnkit-clash"
    [error] = host.plugins["cnnkit-clash"].errors
    assert "model 'mnist-cnn'" in error and "'builtins.models'" in error
    assert "cnnkit-clash" in warnings[0]


def test_collision_between_two_third_party_plugins_is_deterministic(install_plugin):
    source = """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("shared-net", lambda **kw: __name__)
    """
    install_plugin("cnnkit-zeta", source)
    install_plugin("cnnkit-alpha", source)
    host, _ = quiet_host()
    assert host.registry("models").get("shared-net").plugin == "cnnkit-alpha"
    assert host.plugins["cnnkit-zeta"].errors and not host.plugins["cnnkit-alpha"].errors


def test_a_plugin_with_a_misspelt_hook_is_reported_with_a_suggestion_and_skipped_whole(install_plugin):
    install_plugin(
        "cnnkit-typo",
        """
        from cnnkit import hookimpl

        @hookimpl
        def register_model(register):
            pass

        @hookimpl
        def register_initializers(register):
            register("typo-init", lambda: None)
        """,
    )
    host, _ = quiet_host()
    host.build_all()
    info = host.plugins["cnnkit-typo"]
    assert info.errors == ["implements unknown hook 'register_model' (did you mean 'register_models'?); the plugin is skipped"]
    assert "typo-init" not in host.registry("initializers") and info.registers == {}


@pytest.mark.parametrize("where", ["import", "hook"])
def test_a_plugin_calling_sys_exit_is_a_failing_plugin_not_the_end_of_cnnkit(install_plugin, run_cli, where):
    source = "import sys\nsys.exit(3)\n" if where == "import" else """
        import sys
        from cnnkit import hookimpl

        @hookimpl
        def register_commands(register):
            sys.exit(3)
    """
    install_plugin("cnnkit-quitter", source)
    result = run_cli("--help")
    assert result.code == 0 and "train" in result.out
    assert "plugin 'cnnkit-quitter'" in result.err and "SystemExit: 3" in result.err
    listing = run_cli("plugins")
    assert "cnnkit-quitter 1.0 (cnnkit-quitter)  FAILED" in listing.out


def test_two_distributions_with_one_entry_point_name_are_both_listed(install_plugin, run_cli):
    install_plugin("cnnkit-first", GOOD_PLUGIN, entry_point="shared")
    install_plugin("cnnkit-second", GOOD_PLUGIN.replace("tiny-net", "other-net"), entry_point="shared")
    result = run_cli("plugins", "--json")
    entries = [p for p in json.loads(result.out) if p["name"] == "shared"]
    assert [(p["distribution"], p["ok"]) for p in entries] == [("cnnkit-first", True), ("cnnkit-second", False)]
    assert entries[1]["errors"] == [
        "uses the entry-point name 'shared', already used by cnnkit-first; it is skipped (one of the two must be renamed)"
    ]
    assert "plugin 'shared' (cnnkit-second) uses the entry-point name 'shared', already used by cnnkit-first" in result.err
    assert entries[0]["registers"] == {"models": ["tiny-net"]} and entries[1]["registers"] == {}


def test_strict_mode_makes_plugin_failures_fatal(install_plugin, monkeypatch):
    install_plugin("cnnkit-broken", "raise ImportError('missing dependency')\n")
    monkeypatch.setenv("CNNKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="cnnkit-broken.*missing dependency"):
        PluginHost().load()


def test_plugins_command_lists_builtins_third_party_and_failures(install_plugin, run_cli):
    install_plugin("cnnkit-tiny", GOOD_PLUGIN)
    install_plugin("cnnkit-broken", "import does_not_exist_anywhere\n")
    result = run_cli("plugins")
    assert result.code == 0
    assert "builtins.models 0.1.0 (built-in)\n  models: mnist-cnn" in result.out
    assert "cnnkit-tiny 1.0 (cnnkit-tiny)\n  models: tiny-net" in result.out
    assert "cnnkit-broken 1.0 (cnnkit-broken)  FAILED\n  error: failed to load: ModuleNotFoundError" in result.out
    assert "warning: plugin 'cnnkit-broken'" in result.err


def test_plugins_json_reports_what_each_plugin_registers(install_plugin, run_cli):
    install_plugin("cnnkit-tiny", GOOD_PLUGIN)
    result = run_cli("plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(result.out)}
    assert plugins["cnnkit-tiny"] == {
        "name": "cnnkit-tiny",
        "module": "cnnkit_tiny",
        "version": "1.0",
        "builtin": False,
        "distribution": "cnnkit-tiny",
        "api": None,
        "ok": True,
        "errors": [],
        "registers": {"models": ["tiny-net"]},
        "disabled": None,
    }
    assert plugins["builtins.initializers"]["registers"]["initializers"][:2] == ["lecun-normal", "lecun-uniform"]


def test_a_broken_plugin_leaves_other_commands_working(install_plugin, run_cli):
    install_plugin("cnnkit-broken", "raise RuntimeError('boom')\n")
    result = run_cli("models")
    assert result.code == 0
    assert "mnist-cnn" in result.out
    assert "cnnkit-broken" in result.err and "boom" in result.err


def test_plugin_can_add_a_cli_command(install_plugin, run_cli):
    install_plugin(
        "cnnkit-hello",
        """
        import click
        from cnnkit import hookimpl

        @click.command()
        @click.argument("who")
        def hello(who):
            "Say hello."
            click.echo(f"hello {who}")

        @hookimpl
        def register_commands(register):
            register("hello", lambda: hello, help="Say hello")
        """,
    )
    assert run_cli("hello", "world").out == "hello world\n"
    assert "hello" in run_cli("--help").out


def test_plugin_command_that_fails_to_build_is_reported(install_plugin, run_cli):
    install_plugin(
        "cnnkit-badcmd",
        """
        from cnnkit import hookimpl

        def build():
            raise ImportError("needs extra package")

        @hookimpl
        def register_commands(register):
            register("badcmd", build)
        """,
    )
    listing = run_cli("--help")
    assert listing.code == 0 and "train" in listing.out and "badcmd" not in listing.out
    result = run_cli("badcmd")
    assert result.code == 1
    assert result.err.strip() == (
        "Error: command 'badcmd' of plugin 'cnnkit-badcmd' failed to load: ImportError: needs extra package"
    )


def test_strict_mode_through_the_cli_is_one_line_and_exit_1(install_plugin, run_cli):
    install_plugin("cnnkit-broken", "raise ImportError('missing dependency')\n")
    result = run_cli("models", env={"CNNKIT_STRICT_PLUGINS": "1"})
    assert result.code == 1
    assert result.err.strip() == (
        "Error: plugin 'cnnkit-broken' failed to load: ImportError: missing dependency (CNNKIT_STRICT_PLUGINS is set)"
    )


def test_an_unknown_name_while_plugins_are_off_says_so_and_which_plugin_may_provide_it(install_plugin, run_cli):
    install_plugin("cnnkit-tiny", GOOD_PLUGIN, entry_point="tiny-net")
    unset = run_cli("train", "--model", "no-such-net")
    assert unset.code == 2 and "CNNKIT_NO_PLUGINS" not in unset.err, "not set: no note"
    result = run_cli("train", "--model", "tiny-net", env={"CNNKIT_NO_PLUGINS": "1"})
    assert result.code == 2
    assert result.err.strip().endswith(
        "CNNKIT_NO_PLUGINS is set, so third-party plugins were not loaded; the installed plugin 'tiny-net' (cnnkit-tiny) "
        "may provide 'tiny-net': unset CNNKIT_NO_PLUGINS to use it.")
    other = run_cli("train", "--data", "tiny-data", env={"CNNKIT_NO_PLUGINS": "1"})
    assert other.code == 2
    assert "(CNNKIT_NO_PLUGINS is set: the installed third-party plugins " in other.err
    assert "'tiny-net' (cnnkit-tiny)" in other.err and "were not loaded.)" in other.err


def test_the_installed_lenet5_plugin_is_named_when_plugins_are_off(run_cli):
    result = run_cli("train", "--model", "lenet5", env={"CNNKIT_NO_PLUGINS": "1"})
    assert result.code == 2
    assert result.err.startswith("Error: Unknown model 'lenet5'.")
    assert "the installed plugin 'lenet5' (cnnkit-lenet5) may provide 'lenet5': unset CNNKIT_NO_PLUGINS to use it." in result.err
