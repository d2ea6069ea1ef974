"""alexnet-2012 says what it is: the one-tower variant by default (62,378,344 parameters), and with
``--model-kwargs groups=2`` the paper's two towers (60,965,224: Krizhevsky et al. 2012, conv2,
conv4 and conv5 connected only within their GPU's half, response normalisation within it too)."""

import pytest
import torch
from torch import nn

from cnnkit.models.alexnet import AlexNet2012


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_parameter_counts_are_the_one_tower_and_the_papers_two_tower_numbers():
    assert count(AlexNet2012()) == 62_378_344
    assert count(AlexNet2012(groups=2)) == 60_965_224


@pytest.mark.slow
def test_two_towers_group_conv2_conv4_conv5_only():
    f = AlexNet2012(groups=2).features
    assert {name: layer.groups for name, layer in f.named_children() if isinstance(layer, nn.Conv2d)} == {
        "conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    assert all(layer.groups == 1 for layer in AlexNet2012().modules() if isinstance(layer, nn.Conv2d))


@pytest.mark.slow
def test_each_towers_half_of_conv2_sees_only_its_own_half_of_conv1():
    conv2 = AlexNet2012(groups=2).features.conv2
    x = torch.rand(1, 96, 27, 27)
    changed = x.clone()
    changed[:, 48:] += 1  # the second tower's conv1 maps
    with torch.no_grad():
        before, after = conv2(x), conv2(changed)
    assert torch.equal(before[:, :128], after[:, :128]), "the first tower's conv2 does not see the second tower"
    assert not torch.equal(before[:, 128:], after[:, 128:])


@pytest.mark.slow
def test_response_normalisation_stays_within_each_tower():
    norm1 = AlexNet2012(groups=2).features.norm1
    lrn = nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)
    x = torch.rand(2, 96, 5, 5) * 10
    assert torch.equal(norm1(x), torch.cat([lrn(x[:, :48]), lrn(x[:, 48:])], dim=1))
    assert not torch.allclose(norm1(x)[:, 46:50], lrn(x)[:, 46:50]), "at the border the towers differ from one LRN"


def test_model_kwargs_groups_2_builds_the_two_towers_and_the_help_says_one_tower_by_default():
    from cnnkit.plugins import registry
    from cnnkit.values import parse_model_kwargs

    entry = registry("models").get("alexnet-2012")
    assert "one-tower variant" in entry.help and "groups=2" in entry.help and "as published" not in entry.help
    assert count(entry.create(num_classes=1000, in_channels=3, **parse_model_kwargs("groups=2"))) == 60_965_224
    with pytest.raises(ValueError, match=r"groups must be 1 \(one tower\) or 2 \(the paper's two towers\), got 3"):
        AlexNet2012(groups=3)


def test_a_tower_count_other_than_one_or_two_is_a_usage_error(run_cli, tmp_path):
    result = run_cli("train", "--model", "alexnet-2012", "--model-kwargs", "groups=3", "--out", str(tmp_path))
    assert result.code == 2
    assert result.err.strip() == "Error: --model-kwargs: 'groups' of alexnet-2012 must be one of 1, 2, got 3."
