import pytest

from cnnkit.config import FIELD_NAMES, TrainConfig, read_config_file
from cnnkit.errors import UsageError


def test_toml_and_json_files_give_the_same_options(tmp_path):
    (tmp_path / "a.toml").write_text('model = "lenet5"\nbatch-size = 16\nlr = 0.01\n')
    (tmp_path / "a.json").write_text('{"model": "lenet5", "batch_size": 16, "lr": 0.01}')
    expected = {"model": "lenet5", "batch_size": 16, "lr": 0.01}
    assert read_config_file(tmp_path / "a.toml") == expected == read_config_file(tmp_path / "a.json")


def test_every_train_flag_is_a_config_key_with_the_same_default():
    from cnnkit.cli.train import train

    options = {param.name: param.default for param in train.params if param.name != "config"}
    defaults = TrainConfig().to_dict()
    assert set(options) == set(FIELD_NAMES)
    assert options == defaults


def test_comma_separated_augmentations():
    assert TrainConfig(augment=" random-shift, hflip ,").augmentations == ["random-shift", "hflip"]


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
