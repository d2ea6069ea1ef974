"""Config files (issue 15, item 18): whole floats, every unknown key at once, keys given twice,
paths relative to the file, and errors that name the file and the key."""

import json
import os

import pytest

from cnnkit.config import read_config_file
from cnnkit.errors import UsageError
from cnnkit.options import TrainConfig, checked


def read(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return read_config_file(path)


def refused(tmp_path, name, text) -> str:
    with pytest.raises(UsageError) as caught:
        read(tmp_path, name, text)
    return str(caught.value)


def test_a_whole_float_is_that_whole_number_and_a_fraction_or_a_huge_batch_is_refused(tmp_path):
    assert read(tmp_path, "a.toml", "epochs = 1e3\n") == {"epochs": 1000}
    assert type(read(tmp_path, "a.json", '{"epochs": 1e3, "seed": 7.0}')["epochs"]) is int
    assert checked("epochs").convert("1e3", None, None) == 1000
    assert refused(tmp_path, "b.toml", "epochs = 2.9\n").endswith("option 'epochs' must be a whole number at least 1, got 2.9.")
    assert refused(tmp_path, "c.toml", "batch_size = 1e22\n").endswith(
        "option 'batch_size' must be a whole number at least 1 and at most 2147483647, got 1e+22.")
    assert refused(tmp_path, "d.toml", "seed = 1.8446744073709552e19\n").endswith("got 1.8446744073709552e+19.")


def test_every_unknown_key_is_named_at_once_with_its_suggestion(tmp_path):
    message = refused(tmp_path, "c.toml", "epoch = 3\nlrr = 0.1\nbatch = 8\n")
    assert message == (f"{tmp_path / 'c.toml'}: Unknown options 'epoch' (did you mean 'epochs'?), 'lrr' (did you mean 'lr'?) "
                       "and 'batch' (did you mean 'batch_size'?).")
    with_stranger = refused(tmp_path, "d.toml", "epoch = 3\nzzz = 1\n")
    assert "'epoch' (did you mean 'epochs'?) and 'zzz'. Known options: model, model_kwargs," in with_stranger


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.json", '{"epochs": 1, "lr": 0.1, "epochs": 5}', "option 'epochs' is given twice; keep one."),
        ("c.toml", "epochs = 1\nepochs = 5\n", "option 'epochs' is given twice; keep one."),
        ("c.toml", "batch-size = 8\nbatch_size = 16\n", "option 'batch_size' is given twice (as 'batch-size' and 'batch_size'); keep one."),
        ("c.json", '{"batch-size": 8, "batch_size": 16}', "option 'batch_size' is given twice (as 'batch-size' and 'batch_size'); keep one."),
    ],
)
def test_a_key_given_twice_is_refused_not_overwritten(tmp_path, name, text, message):
    assert json.loads('{"epochs": 1, "epochs": 5}') == {"epochs": 5}, "the json module alone keeps the last"
    assert refused(tmp_path, name, text) == f"{tmp_path / name}: {message}"


def test_relative_paths_are_relative_to_the_config_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "configs"
    (folder / "imgs").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    options = read(folder, "c.toml", 'data = "imgs"\nout = "../runs"\ndata_dir = "~/sets"\nresume = "runs/a"\n'
                                     'weights = "w/model.pth"\nbackbone = "./runs/b/best.pt"\n')
    assert options == {
        "data": str(folder / "imgs"), "out": str(tmp_path / "project" / "runs"), "data_dir": os.path.expanduser("~/sets"),
        "resume": str(folder / "runs" / "a"), "weights": str(folder / "w" / "model.pth"),
        "backbone": str(folder / "runs" / "b" / "best.pt"),
    }
    names = read(folder, "n.toml", 'data = "digits"\nbackbone = "timm/resnet18.a1_in1k"\nweights = "IMAGENET1K_V1"\n')
    assert names == {"data": "digits", "backbone": "timm/resnet18.a1_in1k", "weights": "IMAGENET1K_V1"}, "names stay names"


def test_a_relative_path_never_falls_back_to_the_working_folder(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    (tmp_path / "imgs2").mkdir()  # only in the working folder: the old reading took it from here
    (tmp_path / "runs" / "base").mkdir(parents=True)
    (tmp_path / "runs" / "base" / "best.pt").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    options = read(folder, "d.toml", 'data = "imgs2"\nbackbone = "runs/base"\nname = "x"\n')
    assert options == {"data": str(folder / "imgs2"), "backbone": str(folder / "runs" / "base"), "name": "x"}
    kept = read(folder, "m.toml", 'data = "digits"\nbackbone = "resnet18"\n')
    assert kept == {"data": "digits", "backbone": "resnet18"}, "registered names stay names"
    (folder / "mine").mkdir()
    assert read(folder, "b.toml", 'backbone = "mine"\n') == {"backbone": str(folder / "mine")}, "a bare name that is there"


def test_a_config_file_reached_through_a_link_reads_paths_from_where_it_really_is(tmp_path):
    (tmp_path / "conf" / "imgs").mkdir(parents=True)
    (tmp_path / "conf" / "g.toml").write_text('data = "imgs"\nout = "runs"\n')
    (tmp_path / "sl").mkdir()
    (tmp_path / "sl" / "g.toml").symlink_to(os.path.join("..", "conf", "g.toml"))
    assert read_config_file(tmp_path / "sl" / "g.toml") == {
        "data": str(tmp_path / "conf" / "imgs"), "out": str(tmp_path / "conf" / "runs")}


def test_a_missing_file_relative_path_names_the_file_the_key_and_where_it_leads(run_cli, tmp_path, monkeypatch, make_images):
    make_images(tmp_path / "imgs2" / "a", 4, (220, 30, 30), size=8)
    make_images(tmp_path / "imgs2" / "b", 4, (30, 30, 220), size=8)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "d.toml").write_text('data = "imgs2"\nout = "runs"\nepochs = 1\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("train", "--config", "conf/d.toml")
    assert (result.code, result.err.strip()) == (2, (
        f"Error: conf/d.toml: option 'data': '{tmp_path / 'conf' / 'imgs2'}' does not exist ('imgs2' is relative to the "
        "config file's folder, not to the working folder), and 'imgs2' is not a registered dataset either."))
    assert not (tmp_path / "conf" / "runs").exists() and not (tmp_path / "runs").exists()
    (tmp_path / "conf" / "t.toml").write_text('data = "digitz"\n')
    assert "not a registered dataset either (did you mean 'digits'?)." in run_cli("train", "--config", "conf/t.toml").err
    (tmp_path / "conf" / "f.toml").write_text('backbone = "runs/base"\n')
    refused = run_cli("finetune", "--config", "conf/f.toml")
    assert (refused.code, refused.err.strip()) == (2, (
        f"Error: conf/f.toml: option 'backbone': '{tmp_path / 'conf' / 'runs' / 'base'}' does not exist ('runs/base' is "
        "relative to the config file's folder, not to the working folder)."))
    overridden = run_cli("train", "--config", "conf/d.toml", "--data", "imgs2", "--quiet", "--name", "r")
    assert overridden.code == 0, "a flag replaces the file's path: " + overridden.err
    assert (tmp_path / "conf" / "runs" / "r" / "best.pt").is_file()


def test_a_config_file_in_another_folder_trains_on_the_data_beside_it(run_cli, tmp_path, monkeypatch, make_images):
    project = tmp_path / "project"
    make_images(project / "imgs" / "red", 6, (220, 30, 30), size=8)
    make_images(project / "imgs" / "blue", 6, (30, 30, 220), size=8)
    (project / "c.toml").write_text('data = "imgs"\nout = "runs"\nname = "r"\nepochs = 1\nquiet = true\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = run_cli("train", "--config", "../project/c.toml", "--model", "mnist-cnn")
    assert result.code == 0, result.err
    recorded = json.loads((project / "runs" / "r" / "config.json").read_text())
    assert recorded["data"] == str(project / "imgs") and recorded["out"] == str(project / "runs")
    assert not (tmp_path / "elsewhere" / "runs").exists()


@pytest.mark.slow
def test_config_json_records_absolute_paths_and_repeats_the_run_from_another_folder(run_cli, tmp_path, monkeypatch, make_images):
    project = tmp_path / "project"
    make_images(project / "imgs" / "red", 6, (220, 30, 30), size=8)
    make_images(project / "imgs" / "blue", 6, (30, 30, 220), size=8)
    monkeypatch.chdir(project)
    first = run_cli("train", "--data", "imgs", "--out", "runs", "--name", "a", "--epochs", "1", "--quiet")
    assert first.code == 0, first.err
    record = project / "runs" / "a" / "config.json"
    assert json.loads(record.read_text())["data"] == str(project / "imgs")
    again = run_cli("train", "--resume", "runs/a", "--data", "imgs", "--epochs", "2", "--quiet")
    assert again.code == 0, "the same folder given again, relative, is no change: " + again.err
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    repeat = run_cli("train", "--config", str(record), "--name", "b", "--out", str(project / "runs"), "--epochs", "1")
    assert repeat.code == 0, repeat.err
    rows = [(project / "runs" / name / "metrics.csv").read_text().splitlines()[1].split(",")[:5] for name in ("a", "b")]
    assert rows[0] == rows[1], "the repeat trains on the same images, the same way"


def test_a_run_record_written_with_relative_paths_is_read_from_the_working_folder(tmp_path):
    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"data": "imgs", "out": "runs"}')
    (run / "last.pt").write_bytes(b"")
    assert read_config_file(run / "config.json") == {"data": "imgs", "out": "runs"}, "as an earlier cnnkit wrote them"
    (run / "last.pt").unlink()
    assert read_config_file(run / "config.json")["out"] == str(run / "runs"), "any other file: relative to its folder"


def test_to_dict_makes_relative_paths_absolute_and_keeps_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = TrainConfig(data="./imgs", out="runs", resume="", weights="").to_dict()
    assert (record["data"], record["out"], record["resume"], record["weights"]) == (
        str(tmp_path / "imgs"), str(tmp_path / "runs"), "", "")
    assert TrainConfig(data="digits").to_dict()["data"] == "digits"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('model = "mnist-cnm"\n', "option 'model': Unknown model 'mnist-cnm'. Did you mean 'mnist-cnn' or 'mnist-cnn2'?"),
        ('image_size = "0x5"\n', "option 'image_size': --image-size '0x5' must be N or HxW"),
        ('image_size = "4"\n', "option 'image_size': model 'mnist-cnn' cannot take 4x4 images:"),
        ("image_size = 4\n", "option 'image_size': model 'mnist-cnn' cannot take 4x4 images:"),
        ("image_size = 0\n", "option 'image_size': --image-size '0' must be N or HxW"),
        ('device = "cude"\n', "option 'device': Unknown device 'cude'."),
        ("nnodes = 2\n", "option 'nnodes': --nnodes only applies to --strategy ddp"),
        ('optimizer = "sgdd"\n', "option 'optimizer': Unknown optimizer 'sgdd'. Did you mean 'sgd'?"),
        ('model_kwargs = "dropout"\n', "option 'model_kwargs': --model-kwargs 'dropout' must be KEY=VALUE"),
    ],
)
def test_an_error_about_a_value_from_a_config_file_names_the_file_and_the_key(run_cli, tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    result = run_cli("train", "--config", str(path), "--out", str(tmp_path / "runs"))
    assert result.code == 2
    assert result.err.startswith(f"Error: {path}: {message}"), result.err


def test_a_flag_that_overrides_the_file_is_not_blamed_on_it(run_cli, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('model = "mnist-cnn2"\nepochs = 1\n')
    result = run_cli("train", "--config", str(path), "--model", "mnist-cnm", "--out", str(tmp_path / "runs"))
    assert result.err.strip() == "Error: Unknown model 'mnist-cnm'. Did you mean 'mnist-cnn' or 'mnist-cnn2'?"


def test_an_image_size_written_as_a_number_is_that_size(tmp_path):
    assert read(tmp_path, "a.toml", "image_size = 32\n") == {"image_size": "32"}
    assert read(tmp_path, "a.json", '{"image_size": 32}') == {"image_size": "32"}
    assert read(tmp_path, "b.toml", 'image_size = "32x48"\n') == {"image_size": "32x48"}
    assert refused(tmp_path, "c.toml", "image_size = true\n").endswith(
        "option 'image_size' must be text or a whole number, got true.")
    assert refused(tmp_path, "d.toml", "image_size = 32.5\n").endswith("got 32.5.")
