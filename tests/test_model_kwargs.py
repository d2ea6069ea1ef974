"""--model-kwargs checked against the factory's signature and annotations (issue 15, item 14)."""

import inspect

import pytest

from cnnkit.errors import UsageError
from cnnkit.models.kwargs import accepted_kwargs, check_model_kwargs
from cnnkit.plugins import PluginHost
from cnnkit.values import parse_model_kwargs


@pytest.fixture(scope="module")
def models():
    return PluginHost(entry_points=False, warn=lambda message: None).registry("models")


def refusal(models, name, text) -> str:
    with pytest.raises(UsageError) as caught:
        check_model_kwargs(models.get(name), parse_model_kwargs(text))
    return str(caught.value)


def test_an_unknown_keyword_of_a_builtin_model_is_a_usage_error_with_a_suggestion(run_cli, tmp_path):
    result = run_cli("train", "--model", "resnet20", "--model-kwargs", "shortcat=B", "--out", str(tmp_path))
    assert (result.code, result.err.strip()) == (
        2, "Error: --model-kwargs: resnet20 takes no argument 'shortcat'. Did you mean 'shortcut'? It takes (shortcut='A').")
    assert list(tmp_path.iterdir()) == [], "refused before anything is written"


def test_a_value_of_the_wrong_type_is_a_usage_error_naming_the_type(run_cli, tmp_path):
    result = run_cli("train", "--model", "mnist-cnn2", "--model-kwargs", "dropout=high", "--out", str(tmp_path))
    assert (result.code, result.err.strip()) == (2, "Error: --model-kwargs: 'dropout' of mnist-cnn2 must be a number, got 'high'.")


def test_a_model_with_no_arguments_of_its_own_says_so(models):
    assert refusal(models, "mnist-cnn", "dropout=0.3") == (
        "--model-kwargs: mnist-cnn takes no argument 'dropout'; it takes none but num_classes and in_channels, "
        "which come from the data.")


def test_torchvision_models_take_exactly_their_class_arguments(models):
    from torchvision.models import ResNet

    reference = set(inspect.signature(ResNet.__init__).parameters) - {"self"}
    assert reference <= set(accepted_kwargs(models.get("resnet18")).params)
    check_model_kwargs(models.get("resnet18"), parse_model_kwargs("zero_init_residual=True,groups=1,width_per_group=64"))
    message = refusal(models, "resnet18", "zero_init_residul=True")
    assert message.startswith("--model-kwargs: resnet18 takes no argument 'zero_init_residul'. Did you mean 'zero_init_residual'?")
    assert refusal(models, "resnet18", "zero_init_residual=1") == (
        "--model-kwargs: 'zero_init_residual' of resnet18 must be true or false, got 1.")
    assert "cannot set 'weights' of resnet18" in refusal(models, "resnet18", "weights=None")


def test_timm_models_take_create_model_and_their_class_arguments(models):
    from timm.models.resnet import ResNet

    entry = models.get("timm/resnet18")
    assert {"drop_rate", "drop_path_rate", "zero_init_last", "scriptable"} <= set(accepted_kwargs(entry).params)
    assert set(inspect.signature(ResNet.__init__).parameters) - {"self"} <= set(accepted_kwargs(entry).params)
    check_model_kwargs(entry, parse_model_kwargs("drop_rate=0.2,channels=(8,16,32,64)"))
    assert "Did you mean 'drop_rate'?" in refusal(models, "timm/resnet18", "drop_rte=0.2")
    assert refusal(models, "timm/resnet18", "in_chans=1") == "--model-kwargs cannot set in_chans: it comes from the data."


PLUGIN = """
    from typing import Literal, Optional, Tuple
    from cnnkit import hookimpl

    def strict(*, num_classes=10, in_channels=1, norm: Literal["batch", "layer"] = "batch",
               widths: Tuple[int, ...] = (8, 16), scale: Optional[float] = None):
        raise RuntimeError("not built in this test")

    def loose(*, num_classes=10, in_channels=1, **options):
        raise RuntimeError("not built in this test")

    @hookimpl
    def register_models(register):
        register("strict-net", strict, input_size=(1, 8, 8))
        register("loose-net", loose, input_size=(1, 8, 8))
"""


def test_plugin_annotations_are_checked_and_a_factory_taking_any_keyword_takes_any(install_plugin):
    install_plugin("cnnkit-kw", PLUGIN)
    models = PluginHost(warn=lambda message: None).registry("models")
    check_model_kwargs(models.get("strict-net"), parse_model_kwargs("norm=layer,widths=(4,8,16),scale=None"))
    check_model_kwargs(models.get("strict-net"), parse_model_kwargs("scale=2"))
    assert refusal(models, "strict-net", "norm=group") == (
        "--model-kwargs: 'norm' of strict-net must be one of 'batch', 'layer', got 'group'.")
    assert refusal(models, "strict-net", "widths=8") == (
        "--model-kwargs: 'widths' of strict-net must be a tuple of whole numbers, got 8.")
    assert refusal(models, "strict-net", "widths=(8.0,16)") == (
        "--model-kwargs: 'widths' of strict-net must be a tuple of whole numbers, got (8.0, 16).")
    assert refusal(models, "strict-net", "scale=big") == (
        "--model-kwargs: 'scale' of strict-net must be a number or None, got 'big'.")
    check_model_kwargs(models.get("loose-net"), parse_model_kwargs("anything=1,goes=x"))


def test_commas_inside_brackets_and_quotes_stay_in_one_value():
    assert parse_model_kwargs("channels=(8,16,32),norm='a,b',dropout=0.3") == {
        "channels": (8, 16, 32), "norm": "a,b", "dropout": 0.3}


@pytest.mark.parametrize("value", ["2.0", "True", "1.0"])
def test_a_literal_choice_is_matched_by_type_not_only_by_equality(models, value):
    from typing import Literal, get_args

    assert parse_model_kwargs(f"groups={value}")["groups"] in get_args(Literal[1, 2]), "== alone lets it through"
    assert refusal(models, "alexnet-2012", f"groups={value}") == (
        f"--model-kwargs: 'groups' of alexnet-2012 must be one of 1, 2, got {value}.")
    check_model_kwargs(models.get("alexnet-2012"), parse_model_kwargs("groups=2"))


def test_alexnet_itself_refuses_a_bool_or_float_tower_count():
    from cnnkit.models.alexnet import AlexNet2012

    for groups in (True, 2.0):
        with pytest.raises(ValueError, match=f"groups must be 1 .* or 2 .*, got {groups!r}"):
            AlexNet2012(num_classes=2, groups=groups)


def test_a_key_given_twice_is_refused_as_in_config_files():
    with pytest.raises(UsageError) as caught:
        parse_model_kwargs("shortcut=B,shortcut=A")
    assert str(caught.value) == "--model-kwargs: 'shortcut' is given twice; keep one."


def test_a_value_the_model_refuses_when_built_is_a_usage_error_naming_it(run_cli, tmp_path):
    import torch

    with pytest.raises(ValueError) as reference:
        torch.nn.Dropout(1.5)
    result = run_cli("train", "--model", "mnist-cnn2", "--model-kwargs", "dropout=1.5", "--out", str(tmp_path / "runs"))
    assert (result.code, result.err.strip()) == (
        2, f"Error: --model-kwargs dropout=1.5: mnist-cnn2 cannot be built with it: {reference.value}.")
    assert not (tmp_path / "runs").exists()


def test_only_a_refusal_that_building_without_the_kwargs_avoids_is_blamed_on_them():
    from cnnkit.errors import CnnkitError
    from cnnkit.models.kwargs import blaming_kwargs
    from cnnkit.registry import Entry

    def picky(*, num_classes, in_channels, width=8):
        if width % 2:
            raise ValueError(f"width must be even, got {width}")
        return torch_linear(num_classes)

    def broken(*, num_classes, in_channels, width=8):
        raise ValueError("the plugin's own bug")

    with pytest.raises(UsageError) as caught:
        blaming_kwargs(Entry("models", "picky-net", picky, "p"), {"width": 3}).create(num_classes=2, in_channels=1, width=3)
    assert str(caught.value) == "--model-kwargs width=3: picky-net cannot be built with it: width must be even, got 3."
    with pytest.raises(CnnkitError) as failed:
        blaming_kwargs(Entry("models", "broken-net", broken, "p"), {"width": 3}).create(num_classes=2, in_channels=1, width=3)
    assert not isinstance(failed.value, UsageError)
    assert str(failed.value).startswith("model 'broken-net' of plugin 'p' failed: ValueError: the plugin's own bug")


def torch_linear(classes):
    import torch

    return torch.nn.Linear(1, classes)
