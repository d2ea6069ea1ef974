"""`cnnkit summary`: layers, output shapes, parameters, totals and the output-size rule."""

import json

import pytest


@pytest.mark.slow
def test_alexnet_2012_summary_shows_the_papers_feature_map_sizes(run_cli):
    result = run_cli("summary", "--model", "alexnet-2012", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    shapes = {layer["name"]: layer["output_shape"][1:] for layer in summary["layers"]}
    assert shapes["features.conv1"] == [96, 55, 55]
    assert shapes["features.pool1"][1:] == shapes["features.conv2"][1:] == [27, 27]
    assert all(shapes[f"features.{n}"][1:] == [13, 13] for n in ("pool2", "conv3", "conv4", "conv5"))
    assert shapes["features.pool3"] == [256, 6, 6]
    assert summary["params"] == 62_378_344 == sum(layer["params"] for layer in summary["layers"])
    assert summary["macs"] > 1e9 and round(summary["size_mb"]) == 238


def test_explain_fills_in_the_output_size_rule(run_cli):
    result = run_cli("summary", "--model", "alexnet-2012", "--explain")
    assert result.code == 0
    assert "H: floor((227 - 11 + 2*0) / 4) + 1 = 55; W: floor((227 - 11 + 2*0) / 4) + 1 = 55" in result.out
    assert "H: floor((13 - 3 + 2*0) / 2) + 1 = 6" in result.out
    assert result.out.strip().splitlines()[-1].startswith("params 62,378,344 (62,378,344 trainable), 238.0 MB; ")


def test_a_size_the_model_cannot_take_names_the_layer(run_cli):
    result = run_cli("summary", "--model", "alexnet-2012", "--input-size", "3x32x32")
    assert result.code == 2
    assert result.err.strip().startswith(
        "Error: model 'alexnet-2012' cannot take 32x32 images: the feature map is 2x2 when it reaches layer 'features.pool2'"
    )
    assert result.err.strip().endswith("it is made for 227x227. Choose that size (or leave the size out to resize to it).")


def test_summary_of_library_and_resnet_models(run_cli):
    result = run_cli("summary", "--model", "resnet50", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["params"] == 25_557_032
    cifar = json.loads(run_cli("summary", "--model", "resnet20", "--json").out)
    assert cifar["params"] == 269_722 and cifar["input_size"] == [3, 32, 32]
    assert run_cli("summary", "--model", "resnet20", "--input-size", "3x32").code == 2
