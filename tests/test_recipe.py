"""The recipe's shape: option mini-languages parsed once into the plan, a run's parts built into
one frozen object, and the state that changes as it trains made whole in one place."""

import dataclasses

import pytest

from cnnkit.errors import UsageError
from cnnkit.options import TrainConfig
from cnnkit.values import Freeze, parse_freeze


@pytest.mark.parametrize(("text", "pretrained", "expected"), [
    ("", True, Freeze("features")), ("", False, Freeze("none")), ("features", False, Freeze("features")),
    ("none", True, Freeze("none")), ("auto", True, Freeze("auto")), ("2", True, Freeze("stages", 2)),
])
def test_freeze_is_parsed_in_one_place_which_gives_its_default(text, pretrained, expected):
    assert parse_freeze(text, pretrained=pretrained) == expected


def test_a_freeze_value_spells_itself_as_the_option_does():
    assert [str(parse_freeze(text)) for text in ("features", "none", "auto", "3")] == ["features", "none", "auto", "3"]
    assert parse_freeze("0").freezes_nothing and parse_freeze("none").freezes_nothing
    assert not parse_freeze("features").freezes_nothing and parse_freeze("auto").auto


def test_a_malformed_freeze_is_a_usage_error():
    with pytest.raises(UsageError, match=r"^--freeze 'head' must be features, none, auto or a number of stages\.$"):
        parse_freeze("head")


def test_the_plan_carries_the_parsed_values():
    from cnnkit.recipe.plan import make_plan

    plan = make_plan(TrainConfig(model="mnist-cnn2", model_kwargs="dropout=0.25", image_size="20x24"))
    assert (plan.image_size, plan.model_kwargs, plan.freeze) == ((20, 24), {"dropout": 0.25}, None)
    tuned = make_plan(TrainConfig(backbone="resnet18", pretrained=False))
    assert (tuned.freeze, tuned.model_kwargs) == (Freeze("none"), {})


def test_a_built_run_is_one_frozen_object_and_its_changing_state_is_made_whole_at_once(tmp_path):
    from cnnkit.recipe.build import build_parts
    from cnnkit.recipe.parts import FitState
    from cnnkit.recipe.plan import make_plan
    from cnnkit.recipe.run import create_strategy

    config = TrainConfig(epochs=1, quiet=True, strategy="single", device="cpu", out=str(tmp_path))
    plan = make_plan(config)
    parts = build_parts(config, plan, create_strategy(plan.strategy, config), bars=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parts.data = None
    assert parts.input_size == (1, 28, 28) and parts.model_kwargs == {"num_classes": 10, "in_channels": 1}
    assert parts.trainer.model is parts.model and parts.transfer is None
    assert set(vars(FitState(config))) == {"history", "stopper", "best_state", "saved_epoch", "run_dir"}
    assert list(tmp_path.iterdir()) == [], "building writes no run directory"
