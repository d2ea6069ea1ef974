import functools

import pytest
from torch import nn

from cnnkit.errors import UsageError
from cnnkit.registry import DuplicateNameError, Entry, Registry, suggest, unknown_name_message


class Named(nn.Identity):
    def __init__(self, label: str):
        super().__init__()
        self.label = label


def make_registry(*names, plugin="p1"):
    registry = Registry("models")
    for name in names:
        registry.add(Entry("models", name, functools.partial(Named, name), plugin, help=f"{name} help"))
    return registry


def test_lookup_returns_the_entry_with_its_plugin():
    registry = make_registry("resnet18", "mnist-cnn")
    entry = registry.get("resnet18")
    assert entry.plugin == "p1" and entry.create().label == "resnet18"


def test_wildcard_listing_is_sorted_and_case_insensitive():
    registry = make_registry("resnet50", "ResNet18", "vgg16", "resnext")
    assert registry.names("resnet*") == ["ResNet18", "resnet50"]
    assert registry.names("*16") == ["vgg16"]
    assert registry.names() == ["ResNet18", "resnet50", "resnext", "vgg16"]


def test_unknown_name_suggests_the_close_match_in_one_line():
    registry = make_registry("mnist-cnn", "lenet5")
    with pytest.raises(UsageError) as info:
        registry.get("mnist-cnm")
    assert str(info.value) == "Unknown model 'mnist-cnm'. Did you mean 'mnist-cnn'?"
    assert info.value.exit_code == 2


def test_unknown_name_without_close_match_points_to_the_listing():
    registry = make_registry("mnist-cnn")
    with pytest.raises(UsageError, match=r"Unknown model 'zzz'\. Run 'cnnkit models' to list the 1 available\."):
        registry.get("zzz")


def test_second_registration_of_a_name_is_refused_naming_both_plugins():
    registry = make_registry("lenet5", plugin="first")
    with pytest.raises(DuplicateNameError) as info:
        registry.add(Entry("models", "lenet5", lambda: None, "second"))
    assert "'first'" in str(info.value) and "'second'" in str(info.value)
    assert registry.get("lenet5").plugin == "first"


def test_suggestions_ignore_case_and_keep_original_spelling():
    assert suggest("RESNET1", ["resnet18", "resnet50", "vgg"]) == ["resnet18", "resnet50"]
    assert suggest("RESNET18", ["resnet18", "resnet50", "vgg"]) == ["resnet18"]
    assert unknown_name_message("optimizer", "adm", ["adam", "adamw", "sgd"], "x") == (
        "Unknown optimizer 'adm'. Did you mean 'adam' or 'adamw'?"
    )


def test_a_dataset_factory_must_return_the_members_of_data_splits():
    """The registry checks a dataset factory's product against the contract's protocol (it may not
    import cnnkit.data): the real DataSplits passes, an object lacking one of its fields does not."""
    import dataclasses
    import types

    import torch

    from cnnkit.contracts import DataRequest, DataSplits, Split
    from cnnkit.errors import CnnkitError

    split = Split(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2))
    splits = DataSplits(split, split, None, ["a"], "test data")
    partial = {field.name: getattr(splits, field.name) for field in dataclasses.fields(splits) if field.name != "skipped"}
    request = DataRequest((4, 4), 1)
    assert Entry("datasets", "real", lambda request: splits, "p1").create(request) is splits
    lacking = types.SimpleNamespace(**partial)
    refused = r"^dataset 'partial' of plugin 'p1' returned SimpleNamespace, not cnnkit\.contracts\.DataSplits\.$"
    with pytest.raises(CnnkitError, match=refused):
        Entry("datasets", "partial", lambda request: lacking, "p1").create(request)
