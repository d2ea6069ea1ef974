import pytest

from cnnkit.config import read_config_file
from cnnkit.errors import UsageError
from cnnkit.options import FIELD_NAMES, TrainConfig


def test_toml_and_json_files_give_the_same_options(tmp_path):
    (tmp_path / "a.toml").write_text('model = "lenet5"\nbatch-size = 16\nlr = 0.01\n')
    (tmp_path / "a.json").write_text('{"model": "lenet5", "batch_size": 16, "lr": 0.01}')
    expected = {"model": "lenet5", "batch_size": 16, "lr": 0.01}
    assert read_config_file(tmp_path / "a.toml") == expected == read_config_file(tmp_path / "a.json")


FINETUNE_ONLY = {"backbone", "weights", "pretrained", "freeze", "unfreeze_at", "backbone_lr_mult", "similar"}
TRANSFER_RECIPE = {"optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "scheduler": "step", "step_size": 7, "gamma": 0.1,
                   "weight_decay": 0.0, "label_smoothing": 0.0, "epochs": 10}
"""torchvision's transfer-learning tutorial: SGD at 1e-3 with momentum 0.9, the rate divided by 10 every 7 epochs."""


def test_every_train_flag_is_a_config_key_with_the_same_default():
    from cnnkit.cli.finetune import finetune
    from cnnkit.cli.train import train

    options = {param.name: param.default for param in train.params if param.name != "config"}
    defaults = vars(TrainConfig())
    assert set(options) == set(FIELD_NAMES) - FINETUNE_ONLY
    assert options == {name: defaults[name] for name in options}
    tuned = {param.name: param.default for param in finetune.params if param.name != "config"}
    assert set(tuned) == set(FIELD_NAMES) - {"model", "model_kwargs"}
    for name, value in tuned.items():
        assert value == TRANSFER_RECIPE.get(name, defaults[name]), name


def test_an_augment_list_in_a_config_file_joins_into_one_spec():
    from cnnkit.augment.spec import parse

    spec = TrainConfig(augment=["random-crop(padding=2)", "hflip(p=0.3)"]).augment
    assert [(c.name, c.args, c.kwargs) for c in parse(spec)] == [("random-crop", [], {"padding": 2}), ("hflip", [], {"p": 0.3})]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", "{not json", r"is not valid JSON"),
        ("bad.toml", "model = ", r"is not valid TOML"),
        ("list.json", "[1, 2]", r"must hold a table of options, not list"),
        ("opts.yaml", "model: x", r"must end in \.toml or \.json"),
    ],
)
def test_malformed_config_files_are_usage_errors(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_config_file(path)


def test_every_option_has_a_validation_rule_and_a_help_section():
    from cnnkit.options import OPTIONS, SECTIONS
    from cnnkit.rules import Rule

    assert list(OPTIONS) == FIELD_NAMES
    assert all(isinstance(declared.rule, Rule) and declared.section in SECTIONS for declared in OPTIONS.values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs = 2.9", "option 'epochs' must be a whole number at least 1, got 2.9"),
        ("lr = true", "option 'lr' must be a number above 0, got true"),
        ("lr = nan", "option 'lr' must be a finite number, got nan"),
        ("seed = 18446744073709551616",
         "option 'seed' must be a whole number at least 0 and at most 18446744073709551615, got 18446744073709551616"),
        ("out = 5", "option 'out' must be text, got 5"),
        ("augment = [1, 2]", "option 'augment' must be text, got a list ([1, 2])"),
        ('name = "a\\tb"', "option 'name' must not hold control or invisible formatting characters"),
    ],
)
def test_config_file_values_are_checked_strictly(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(UsageError) as caught:
        read_config_file(path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_a_list_of_augmentations_is_joined_and_null_seeds_are_refused(tmp_path):
    (tmp_path / "a.toml").write_text('augment = ["hflip", "random-shift"]\n')
    assert read_config_file(tmp_path / "a.toml") == {"augment": "hflip,random-shift"}
    (tmp_path / "b.json").write_text('{"seed": null}')
    with pytest.raises(UsageError, match="option 'seed' must be a whole number at least 0 .*, got null"):
        read_config_file(tmp_path / "b.json")
