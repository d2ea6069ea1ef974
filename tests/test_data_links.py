"""Links inside class folders: a loop (``ln -s .. DATA/0/loop``) or a link into another class
never lends that class's images to this one; data check refuses classes that overlap."""

import json
import os
import shutil

import torch

from cnnkit.contracts import DataRequest
from cnnkit.data.folder import images_in, load_folder


def three_classes(root, make_images, count=20):
    for label, value in enumerate((0, 128, 255)):
        make_images(root / str(label), count, (value, value, value), seed=label)
    return root


def load(root):
    return load_folder(root, DataRequest(image_size=(8, 8), channels=3, val_split=0.2, seed=0))


def files_and_labels(data):
    return sorted((path, int(label)) for split in (data.train, data.val)
                  for path, label in zip((split.source.paths[i] for i in split.indices.tolist()), split.labels.tolist()))


def test_a_loop_inside_a_class_reads_nothing_of_the_other_classes(tmp_path, make_images, capsys):
    plain = load(three_classes(tmp_path / "plain", make_images))
    root = three_classes(tmp_path / "DATA", make_images)
    os.symlink("..", root / "0" / "loop")
    data = load(root)
    assert (len(data.train), len(data.val)) == (len(plain.train), len(plain.val)) == (48, 12)
    assert torch.equal(data.train.labels.bincount(), torch.tensor([16, 16, 16]))
    plain_files = [(path.replace(str(tmp_path / "plain"), str(root)), label) for path, label in files_and_labels(plain)]
    assert files_and_labels(data) == plain_files, "every image read once, under its own class"
    warnings = [line for line in capsys.readouterr().err.splitlines() if "loop" in line]
    assert warnings == [f"cnnkit: warning: skipping the link '{root / '0' / 'loop'}' (to '{os.path.realpath(root)}'): it leads "
                        "back up to a folder that holds it (a loop), whose other folders' images are not this folder's."]


def test_a_link_into_another_class_is_skipped_and_one_outside_the_data_is_read(tmp_path, make_images, capsys):
    root = three_classes(tmp_path / "DATA", make_images, count=5)
    make_images(tmp_path / "elsewhere" / "more", 3, (0, 0, 0), seed=9)
    os.symlink(root / "1", root / "0" / "ones")
    os.symlink(tmp_path / "elsewhere" / "more", root / "0" / "more")
    data = load(root)
    assert torch.equal(torch.cat([data.train.labels, data.val.labels]).bincount(), torch.tensor([8, 5, 5]))
    err = capsys.readouterr().err
    assert f"skipping the link '{root / '0' / 'ones'}' (to '{os.path.realpath(root / '1')}'): it leads to '1' of the data" in err
    assert "more" not in err


def test_predict_reads_a_folder_with_a_loop_once(tmp_path, make_images):
    make_images(tmp_path / "photos", 3, (0, 0, 0))
    make_images(tmp_path / "other", 2, (0, 0, 0))
    os.symlink("..", tmp_path / "photos" / "up")
    found, _ = images_in(tmp_path / "photos")
    assert found == sorted((tmp_path / "photos").glob("*.png"))


def test_data_check_matches_training_on_a_loop(run_cli, tmp_path, make_images):
    root = three_classes(tmp_path / "DATA", make_images)
    os.symlink("..", root / "0" / "loop")
    result = run_cli("data", "check", str(root), "--json")
    assert result.code == 0, result.out
    report = json.loads(result.out)
    assert report["counts"] == {"train": {"0": 16, "1": 16, "2": 16}, "val": {"0": 4, "1": 4, "2": 4}}
    assert report["duplicates"] == [] and report["trainable"] is True
    assert [item["link"] for item in report["links"]] == [str(root / "0" / "loop")]


def test_data_check_refuses_classes_that_share_an_image(run_cli, tmp_path, make_images):
    root = three_classes(tmp_path / "DATA", make_images, count=5)
    os.symlink(root / "1" / "img000.png", root / "0" / "linked.png")
    result = run_cli("data", "check", str(root))
    assert result.code == 1
    assert result.out.rstrip().endswith(
        f"not trainable:\n  1 image(s) are in two classes at once, so their labels contradict each other (e.g. "
        f"{root / '0' / 'linked.png'} and {root / '1' / 'img000.png'} are one file (reached through a link), in classes 0 and 1); "
        "remove each from the class it does not belong to")
    assert f"label conflict: one file in classes 0 and 1: {root / '0' / 'linked.png'}, {root / '1' / 'img000.png'}" in result.out

    os.unlink(root / "0" / "linked.png")
    shutil.copy(root / "2" / "img003.png", root / "1" / "copied.png")
    report = json.loads(run_cli("data", "check", str(root), "--json").out)
    assert report["trainable"] is False
    assert report["conflicts"] == [{"classes": ["1", "2"], "files": [str(root / "1" / "copied.png"), str(root / "2" / "img003.png")],
                                    "same_file": False}]
    assert "hold the same image, in classes 1 and 2" in report["problems"][0]
