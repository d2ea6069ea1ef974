"""Bad input gets one line on stderr, a did-you-mean where a name is close, and exit code 2.

A scenario that is a row of docs/errors.md is checked there (test_errors_doc.py), not here too.
"""

import pytest

from cnnkit.errors import CnnkitError


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "digts"], "Error: Unknown dataset 'digts'. Did you mean 'digits'?"),
        (["--optimizer", "adm"], "Error: Unknown optimizer 'adm'. Did you mean 'adam' or 'adamw'?"),
        (["--scheduler", "cosin"], "Error: Unknown scheduler 'cosin'. Did you mean 'cosine'?"),
        (["--augment", "random-shift,hflp"],
         "Error: --augment 'random-shift,hflp', at character 14: Unknown augmentation 'hflp'. Did you mean 'hflip'?"),
        (["--init", "he-normall"], "Error: Unknown initializer 'he-normall'. Did you mean 'he-normal'?"),
        (["--strategy", "singel"], "Error: Unknown strategy 'singel'. Did you mean 'single'?"),
    ],
)
def test_unknown_names_suggest_close_matches(run_cli, tmp_path, args, message):
    result = run_cli("train", "--out", str(tmp_path / "runs"), *args)
    assert result.code == 2
    assert result.err.strip() == message
    assert not (tmp_path / "runs").exists(), "nothing is written before the input is checked"


def test_unknown_name_without_a_match_says_where_to_look(run_cli, tmp_path):
    result = run_cli("train", "--out", str(tmp_path), "--data", "qwerty")
    assert result.code == 2
    assert result.err.strip() == (
        "Error: Unknown dataset 'qwerty'. Run 'cnnkit datasets' to list them, or pass a folder path (ImageFolder layout)."
    )


def test_bad_option_value_is_one_line_with_exit_2(run_cli):
    result = run_cli("train", "--epochs", "0")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "--epochs" in result.err and "cnnkit train --help" in result.err


def test_missing_data_folder_names_the_path_and_the_layout(run_cli, tmp_path):
    missing = tmp_path / "no" / "such"
    result = run_cli("train", "--out", str(tmp_path / "runs"), "--data", str(missing))
    assert result.code == 2
    assert result.err.startswith(f"Error: Data folder '{missing}' does not exist; expected ROOT/train/<class>/")
    assert len(result.err.strip().splitlines()) == 1


def test_folder_with_one_class_is_refused_before_training(run_cli, tmp_path, make_images):
    make_images(tmp_path / "data" / "only", 3, (10, 10, 10))
    result = run_cli("train", "--out", str(tmp_path / "runs"), "--data", str(tmp_path / "data"))
    assert result.code == 2
    assert "has 1 class folder ('only'); a classifier needs at least 2" in result.err
    assert not (tmp_path / "runs").exists()


def test_folder_without_images_is_refused(run_cli, tmp_path):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "notes.txt").write_text("not an image")
    result = run_cli("train", "--out", str(tmp_path / "runs"), "--data", str(tmp_path / "data"))
    assert result.code == 2
    assert "No images found in the class folders of" in result.err


def test_unavailable_device_is_a_usage_error(run_cli, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_cli("train", "--out", str(tmp_path), "--device", "cuda")
    assert result.code == 2
    assert result.err.strip() == "Error: --device cuda: CUDA is not available on this machine; use --device cpu or auto."


def test_unexpected_failure_is_one_line_unless_debug(run_cli, tmp_path, install_plugin):
    install_plugin(
        "cnnkit-crash",
        """
        from cnnkit import hookimpl

        def crash(**kwargs):
            raise ZeroDivisionError("model exploded")

        @hookimpl
        def register_models(register):
            register("crash-net", crash, input_size=(1, 28, 28))
        """,
    )
    result = run_cli("train", "--out", str(tmp_path), "--model", "crash-net", "--quiet")
    assert result.code == 1
    assert result.err.strip() == (
        "Error: model 'crash-net' of plugin 'cnnkit-crash' failed: ZeroDivisionError: model exploded "
        "(run with --debug for the traceback)"
    )
    with pytest.raises(CnnkitError) as caught:
        run_cli("--debug", "train", "--out", str(tmp_path), "--model", "crash-net", "--quiet")
    assert isinstance(caught.value.__cause__, ZeroDivisionError), "the traceback reaches the plugin's code"


ZEBRA = """
    from cnnkit import hookimpl

    @hookimpl
    def register_models(register):
        register("zebranet", "torch.nn:Identity", input_size=(1, 8, 8))
"""


@pytest.mark.parametrize("pattern", ["zebranet", "zebra*"])
def test_a_listing_that_matches_nothing_names_the_plugin_left_unloaded(run_cli, install_plugin, pattern):
    install_plugin("cnnkit-zebranet", ZEBRA)
    assert "zebranet" in run_cli("models", pattern).out, "the plugin provides it when loaded"
    result = run_cli("models", pattern, env={"CNNKIT_NO_PLUGINS": "1"})
    assert result.code == 0
    assert result.out.strip() == (
        f"No models match '{pattern}'. CNNKIT_NO_PLUGINS is set, so third-party plugins were not loaded; the installed "
        "plugin 'cnnkit-zebranet' (cnnkit-zebranet) may provide 'zebranet': unset CNNKIT_NO_PLUGINS to use it.")
