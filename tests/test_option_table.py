"""The option table is the one declaration of every training option: flags, defaults per command,
help sections, resume and distributed/transfer rules all come from it."""

import click
import pytest
from click.testing import CliRunner

from cnnkit.options import (
    DISTRIBUTED_ONLY,
    OPTIONS,
    RESUME_MUST_MATCH,
    SECTIONS,
    TRANSFER_ONLY,
    TrainConfig,
    flag_as_given,
    flags_set,
)


def test_the_derived_lists_follow_the_table():
    assert DISTRIBUTED_ONLY == ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint", "rdzv_timeout", "sync_bn")
    assert TRANSFER_ONLY == ("backbone", "weights", "pretrained", "freeze", "unfreeze_at", "backbone_lr_mult", "similar")
    assert "epochs" not in RESUME_MUST_MATCH and "patience" not in RESUME_MUST_MATCH and "device" not in RESUME_MUST_MATCH
    assert {"lr", "seed", "augment", "batch_size", "model"} <= set(RESUME_MUST_MATCH)


def test_a_flag_is_named_as_the_user_spells_it_for_the_value_set():
    assert flag_as_given("pretrained", False) == "--no-pretrained"
    assert flag_as_given("similar", False) == "--different"
    assert flag_as_given("similar", True) == "--similar"
    assert flag_as_given("unfreeze_at", 3) == "--unfreeze-at"
    config = TrainConfig(pretrained=False, freeze="none", unfreeze_at=2)
    assert flags_set(config, TRANSFER_ONLY) == ["--no-pretrained", "--freeze", "--unfreeze-at"]
    assert flags_set(TrainConfig(), TRANSFER_ONLY + DISTRIBUTED_ONLY) == []


def test_help_lists_the_options_under_their_sections():
    from cnnkit.cli.finetune import finetune
    from cnnkit.cli.train import train

    shown = CliRunner().invoke(train, ["--help"], terminal_width=200).output
    headings = [line.rstrip(":") for line in shown.splitlines() if line.endswith("options:")]
    assert headings == [f"{section} options" for section in SECTIONS if section != "Transfer"]
    data_part = shown.split("Data options:")[1].split("Optimization options:")[0]
    assert "--val-split" in data_part and "--epochs" not in data_part
    tuned = CliRunner().invoke(finetune, ["--help"], terminal_width=200).output
    assert "Transfer options:" in tuned and "--model " not in tuned


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_every_flag_parses_its_default_back(name):
    """A flag made from the table accepts what the table says is its default (as text, as typed)."""
    from cnnkit.cli.flags import table_option

    param = table_option(name)
    ctx = click.Context(click.Command("probe", params=[param]))
    default = param.get_default(ctx)
    assert param.type_cast_value(ctx, default) == getattr(TrainConfig(), name)


def test_a_fine_tuning_record_says_what_froze_so_a_resume_may_restate_it(tmp_path):
    """``--freeze`` not given is features (none with --no-pretrained); config.json records that, as
    runs always have, so ``--resume RUN --freeze none`` on a --no-pretrained run is no change."""
    import json

    from cnnkit.recipe.resume import resume_config

    assert TrainConfig(backbone="resnet18").to_dict()["freeze"] == "features"
    assert TrainConfig(backbone="resnet18", pretrained=False).to_dict()["freeze"] == "none"
    assert TrainConfig(backbone="resnet18", freeze="auto").to_dict()["freeze"] == "auto"
    assert TrainConfig().to_dict()["freeze"] == "", "no backbone: nothing to freeze"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(TrainConfig(backbone="resnet18", pretrained=False, epochs=1).to_dict()))
    (run / "last.pt").write_bytes(b"")
    assert resume_config(run, {"freeze": "none", "epochs": 2}).freeze == "none"
