"""``cnnkit data check NAME`` checks a built-in dataset as training reads it (a name is read as
``--data`` reads it: ``./digits`` is the folder); a set not downloaded yet is named in one line."""

import json
import struct

import numpy as np
import torch

from cnnkit.data.digits import load_digits


def test_data_check_digits_reports_the_shipped_dataset(run_cli):
    result = run_cli("data", "check", "digits", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    data = load_digits()
    assert report["classes"] == data.classes == [str(d) for d in range(10)]
    for split in ("train", "val", "test"):
        counts = getattr(data, split).labels.bincount(minlength=10).tolist()
        assert list(report["counts"][split].values()) == counts
    assert report["trainable"] is True and report["layout"].startswith("built-in dataset: UCI handwritten digits")
    assert report["sizes"] == {"width": [8, 8, 8], "height": [8, 8, 8]} and report["modes"] == {"L": 1797}
    text = run_cli("data", "check", "digits").out
    assert "trains on 1259 train / 269 val / 269 test images (validation from the dataset's fixed split" in text
    assert text.rstrip().endswith("trainable")


def test_a_folder_named_like_a_dataset_is_read_as_train_reads_it(run_cli, tmp_path, monkeypatch, make_images):
    make_images(tmp_path / "digits" / "a", 5, (0, 0, 0))
    make_images(tmp_path / "digits" / "b", 5, (255, 255, 255))
    monkeypatch.chdir(tmp_path)
    report = json.loads(run_cli("data", "check", "./digits", "--json").out)
    assert report["classes"] == ["a", "b"] and report["layout"] == "class folders, no split folders"
    result = run_cli("data", "check", "digits", "--json")
    assert json.loads(result.out)["classes"] == [str(d) for d in range(10)]
    assert result.err.strip() == ("cnnkit: note: 'digits' is both a registered dataset and a folder here; using the dataset "
                                  "(pass ./digits for the folder).")


def test_the_advice_for_a_folder_named_like_a_dataset_names_the_folder(run_cli, tmp_path, monkeypatch, make_images):
    """``--data digits`` is the built-in dataset, so the advice repeats the path as written."""
    make_images(tmp_path / "digits" / "a", 5, (0, 0, 0))
    make_images(tmp_path / "digits" / "b", 5, (255, 255, 255))
    monkeypatch.chdir(tmp_path)
    for given in ("./digits", "digits/", str(tmp_path / "digits")):
        lines = run_cli("data", "check", given).out.splitlines()
        assert lines[0] == f"{given}: class folders, no split folders"
        advice = lines.index(f"--data {given}:")
        assert lines[advice + 1] == "  trains on 8 train / 2 val images (validation split off train by --val-split 0.2; no test split)"
    (tmp_path / "digits").rename(tmp_path / "my digits")
    assert "\n--data 'my digits':\n" in run_cli("data", "check", "my digits").out, "quoted for the shell"


def test_a_dataset_not_downloaded_is_named_in_one_line(run_cli, tmp_path):
    result = run_cli("data", "check", "mnist", "--data-dir", str(tmp_path))
    assert result.code == 0 and result.out == ""
    assert result.err.strip() == (
        f"cnnkit: note: 'mnist' is a built-in dataset whose files are not in '{tmp_path / 'MNIST' / 'raw'}' yet, so there is "
        "nothing to check; 'cnnkit train --data mnist' downloads them (or pass --data-dir to the folder that holds them).")
    assert not (tmp_path / "MNIST").exists(), "nothing downloaded"


def write_idx(folder, prefix, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">4i", 2051, len(images), 28, 28) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">2i", 2049, len(labels)) + labels.tobytes())


def test_data_check_mnist_reads_its_files_and_names_an_image_in_two_classes(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.arange(40, dtype=np.uint8) % 10
    train[13] = train[2]  # the same picture labelled 3 and 2
    write_idx(tmp_path / "MNIST" / "raw", "train", train, labels)
    test = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "MNIST" / "raw", "t10k", test, np.arange(10, dtype=np.uint8))
    result = run_cli("data", "check", "mnist", "--data-dir", str(tmp_path), "--val-split", "0.25", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert {split: sum(counts.values()) for split, counts in report["counts"].items()} == {"train": 30, "val": 10, "test": 10}
    assert torch.equal(torch.tensor(list(report["counts"]["test"].values())), torch.ones(10, dtype=torch.long))
    assert report["conflicts"] == [{"classes": ["2 - two", "3 - three"], "files": ["training image 13", "training image 2"],
                                    "same_file": False}]  # torchvision's class names, its indices
    assert report["trainable"] is True, "a published dataset is trained as published"
    assert report["plan"][-1] == "1 image(s) in two classes, as the dataset was published: trained as they are"


def test_a_misspelt_dataset_name_gets_a_suggestion(run_cli):
    result = run_cli("data", "check", "digitz")
    assert result.code == 2
    assert result.err.strip() == "Error: Unknown dataset 'digitz'. Did you mean 'digits'?"


def test_a_plugin_dataset_is_named_in_one_line_not_read(run_cli, install_plugin):
    install_plugin("cnnkit-farm-data", """
        from cnnkit import hookimpl

        def farm(request):
            raise AssertionError("data check must not read a plugin's dataset")

        @hookimpl
        def register_datasets(register):
            register("farm", farm)
    """)
    result = run_cli("data", "check", "farm")
    assert result.code == 0 and result.out == ""
    assert result.err.strip() == ("cnnkit: note: 'farm' is a dataset of plugin 'cnnkit-farm-data', not a folder; cnnkit data "
                                  "check reads image folders and the built-in datasets, so 'cnnkit train --data farm' is the way to read it.")
