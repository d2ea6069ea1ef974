"""register(): typed metadata (unknown keys refused), lazy references, and every factory's product
checked in one place, the registry, naming the entry and the plugin (issue 16, deliverable 2)."""

from __future__ import annotations

import sys

import pytest

from cnnkit.contracts import DataRequest, StrategyOptions
from cnnkit.errors import CnnkitError
from cnnkit.plugins import PluginHost


def quiet_host(**kwargs):
    warnings: list[str] = []
    return PluginHost(warn=warnings.append, **kwargs), warnings


def test_an_unknown_metadata_key_fails_the_hook_naming_the_valid_keys(install_plugin):
    install_plugin("cnnkit-typo", """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("fine-net", "cnnkit_typo:build", input_size=(1, 8, 8))
            register("typo-net", "cnnkit_typo:build", input_sise=(1, 8, 8))
    """)
    host, warnings = quiet_host()
    models = host.registry("models")
    assert "fine-net" not in models and "typo-net" not in models, "the hook is skipped whole"
    assert host.plugins["cnnkit-typo"].errors == [
        "raised while registering models: TypeError: unknown metadata 'input_sise' for model 'typo-net' (did you mean "
        "'input_size'?); a model takes input_size, params, pretrained, lister, describe, member_help (and help)"]
    assert "mnist-cnn" in models and len(warnings) == 1


def test_a_command_takes_no_metadata(install_plugin):
    install_plugin("cnnkit-meta", """
        from cnnkit import hookimpl

        @hookimpl
        def register_commands(register):
            register("meta", "cnnkit_meta:build", classes=3)
    """)
    host, _ = quiet_host()
    assert "meta" not in host.registry("commands")
    assert host.plugins["cnnkit-meta"].errors[0].endswith("unknown metadata 'classes' for command 'meta'; a command takes none besides help")


def test_a_reference_string_is_imported_only_when_the_entry_is_used(install_plugin, tmp_path):
    site = install_plugin("cnnkit-lazy", """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("lazy-net", "cnnkit_lazy_models:build", input_size=(1, 8, 8))
    """)
    (site / "cnnkit_lazy_models.py").write_text(
        "from torch import nn\n\ndef build(*, num_classes, in_channels):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 64, num_classes))\n")
    host, warnings = quiet_host()
    entry = host.registry("models").get("lazy-net")
    assert "cnnkit_lazy_models" not in sys.modules and warnings == []
    model = entry.create(num_classes=4, in_channels=1)
    assert model[1].out_features == 4 and "cnnkit_lazy_models" in sys.modules
    sys.modules.pop("cnnkit_lazy_models")


def test_a_malformed_reference_fails_the_hook_when_registering(install_plugin):
    install_plugin("cnnkit-badref", """
        from cnnkit import hookimpl

        @hookimpl
        def register_strategies(register):
            register("bad-ref", "cnnkit_badref.Strategy")
    """)
    host, _ = quiet_host()
    assert "bad-ref" not in host.registry("strategies")
    assert host.plugins["cnnkit-badref"].errors == [
        "raised while registering strategies: ValueError: factory for strategy 'bad-ref' 'cnnkit_badref.Strategy' is "
        "not a reference of the form 'package.module:attribute'"]


def test_a_reference_to_a_missing_module_fails_when_used_naming_the_entry(install_plugin):
    install_plugin("cnnkit-ghost", """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("ghost-net", "cnnkit_no_such_module:build")
    """)
    host, _ = quiet_host()
    with pytest.raises(CnnkitError, match=r"^model 'ghost-net' of plugin 'cnnkit-ghost' failed: ModuleNotFoundError: "
                                          r"No module named 'cnnkit_no_such_module'"):
        host.registry("models").get("ghost-net").create(num_classes=2, in_channels=1)


WRONG_PRODUCTS = """
    from cnnkit import hookimpl

    @hookimpl
    def register_models(register):
        register("str-net", lambda **kw: "no", input_size=(1, 8, 8))
        register("weights-net", lambda **kw: None, pretrained=lambda weights="": "no weights")

    @hookimpl
    def register_datasets(register):
        register("none-data", lambda request: None)

    @hookimpl
    def register_augmentations(register):
        register("int-aug", lambda: 3)
        register("half-batched", lambda: (lambda image: image), batched=lambda: 4)
        register("preset-int", lambda: 5, stage="preset", spec="hflip")

    @hookimpl
    def register_initializers(register):
        register("int-init", lambda: 6)

    @hookimpl
    def register_strategies(register):
        register("none-strat", lambda options: None)

    @hookimpl
    def register_commands(register):
        register("int-cmd", lambda: 7)
"""


@pytest.mark.parametrize("kind, name, call, message", [
    ("models", "str-net", lambda e: e.create(num_classes=2, in_channels=1), "returned str, not a torch.nn.Module."),
    ("models", "weights-net", lambda e: e.metadata["pretrained"](""), ": its pretrained returned str, not cnnkit.contracts.Pretrained."),
    ("datasets", "none-data", lambda e: e.create(DataRequest((8, 8), 1)), "returned NoneType, not cnnkit.contracts.DataSplits."),
    ("augmentations", "int-aug", lambda e: e.create(), "returned int, not a function."),
    ("augmentations", "half-batched", lambda e: e.metadata["batched"](), ": its batched returned int, not a function."),
    ("augmentations", "preset-int", lambda e: e.create(), "returned int, not a spec (text)."),
    ("initializers", "int-init", lambda e: e.create(), "returned int, not a function."),
    ("strategies", "none-strat", lambda e: e.create(StrategyOptions()),
     "returned NoneType, which lacks members of cnnkit.contracts.Strategy."),
    ("commands", "int-cmd", lambda e: e.create(), "returned int, not a click command."),
])
def test_what_a_factory_returns_is_checked_by_the_registry_naming_entry_and_plugin(install_plugin, kind, name, call, message):
    install_plugin("cnnkit-wrong", WRONG_PRODUCTS)
    host, warnings = quiet_host()
    entry = host.registry(kind).get(name)
    with pytest.raises(CnnkitError) as caught:
        call(entry)
    noun = {"models": "model", "datasets": "dataset", "augmentations": "augmentation", "initializers": "initializer",
            "strategies": "strategy", "commands": "command"}[kind]
    assert str(caught.value) == f"{noun} '{name}' of plugin 'cnnkit-wrong' {message}".replace("' :", "':")
    assert caught.value.__cause__ is None and warnings == []


def test_a_factory_that_raises_is_named_with_its_plugin_even_where_no_caller_guards_it(install_plugin):
    install_plugin("cnnkit-exit", """
        import sys
        from cnnkit import hookimpl

        def leave(**kwargs):
            sys.exit(4)

        @hookimpl
        def register_models(register):
            register("exit-net", leave)
    """)
    host, _ = quiet_host()
    with pytest.raises(CnnkitError) as caught:
        host.registry("models").get("exit-net").create(num_classes=2, in_channels=1)
    assert str(caught.value) == ("model 'exit-net' of plugin 'cnnkit-exit' failed: SystemExit: 4 "
                                 "(run with --debug for the traceback)")
    assert isinstance(caught.value.__cause__, SystemExit)


def test_a_family_members_metadata_is_checked_like_registered_metadata(install_plugin):
    install_plugin("cnnkit-fam", """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("fam/*", lambda member, **kw: None, lister=lambda: ["a"], describe=lambda member: {"inputsize": 3})
    """)
    host, _ = quiet_host()
    with pytest.raises(CnnkitError, match=r"^model 'fam/\*' of plugin 'cnnkit-fam': its describe\('a'\) gave unknown "
                                          r"metadata 'inputsize' for model 'fam/a' \(did you mean 'input_size'\?\)"):
        host.registry("models").get("fam/a")


@pytest.mark.parametrize("call, error", [
    ('register("x", lambda: None, stage="later")', "stage of augmentation 'x' must be one of sample, batch, preset, got 'later'"),
    ('register("x", lambda: "hflip", stage="preset")', "preset 'x' needs spec="),
    ('register("x", lambda: None, eval_crop=0.9)', "eval_crop of augmentation 'x' needs eval_crop_source="),
    ('register("x", 42)', "TypeError: factory for augmentation 'x' is not callable"),
    ('register("x", lambda: None, help=3)', "TypeError: help of augmentation 'x' must be text, got int"),
])
def test_metadata_that_cannot_work_fails_the_hook_when_registering(install_plugin, call, error):
    install_plugin("cnnkit-odd", f"""
        from cnnkit import hookimpl

        @hookimpl
        def register_augmentations(register):
            {call}
    """)
    host, _ = quiet_host()
    assert "x" not in host.registry("augmentations")
    [message] = host.plugins["cnnkit-odd"].errors
    assert message.startswith("raised while registering augmentations: ") and error in message


def test_none_means_not_given(install_plugin):
    install_plugin("cnnkit-nones", """
        from cnnkit import hookimpl

        @hookimpl
        def register_models(register):
            register("plain-net", lambda **kw: None, input_size=None, pretrained=None)
    """)
    host, _ = quiet_host()
    assert dict(host.registry("models").get("plain-net").metadata) == {}


def test_builtins_register_lazily_with_references_and_no_hand_written_indirections():
    import cnnkit.builtins.models as models
    from cnnkit.contracts import Reference

    host, warnings = quiet_host(entry_points=False)
    entries = [entry for kind in ("models", "datasets", "augmentations", "initializers", "strategies", "commands")
               for entry in host.registry(kind).entries()]
    factories = [getattr(entry.factory, "func", entry.factory) for entry in entries if entry.metadata.get("stage") != "preset"]
    assert factories and all(isinstance(factory, Reference) for factory in factories)
    assert [name for name in vars(models) if name.startswith("_") and callable(getattr(models, name))] == []
    assert warnings == []


def test_a_commands_reference_may_name_the_click_command_itself(install_plugin, run_cli):
    install_plugin("cnnkit-hello", """
        import click
        from cnnkit import hookimpl

        @click.command()
        @click.argument("who")
        def hello(who):
            click.echo(f"hello {who}")

        @hookimpl
        def register_commands(register):
            register("hello", "cnnkit_hello:hello", help="Say hello")
    """)
    assert run_cli("hello", "world").out == "hello world\n"
    assert "hello" in run_cli("--help").out
