"""Links: a loop (``ln -s .. DATA/0/loop``, ``ln -s . DATA/3``), a link into another class or
split, or one folder or file reached from two places never lends an image to a class it is not in,
nor reads it twice. Training reads what the folder holds without the offending link, or refuses
(exit 2) where no label can be given without a guess; ``data check`` agrees (trainable, or exit 1
with the same reason)."""

import json
import os

import pytest
import torch

from cnnkit.contracts import DataRequest
from cnnkit.data.folder import images_in, load_folder
from cnnkit.errors import UsageError


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


def check(run_cli, root):
    result = run_cli("data", "check", str(root), "--json")
    return result.code, json.loads(result.out)


def plain_copy(tmp_path, root, make_images, count=20):
    """What training reads from ``root`` without its offending link: the same images, unlinked."""
    plain = three_classes(tmp_path / "plain", make_images, count)
    return [(path.replace(str(tmp_path / "plain"), str(root)), label) for path, label in files_and_labels(load(plain))]


@pytest.mark.parametrize("target", [".", ".."])
def test_a_class_folder_linked_back_up_is_not_a_class(tmp_path, make_images, run_cli, capsys, target):
    root = three_classes(tmp_path / "DATA", make_images, count=5)
    make_images(tmp_path / "beside", 4, (60, 60, 60), seed=5)  # what '..' would add as class 3
    expected = plain_copy(tmp_path, root, make_images, count=5)
    os.symlink(target, root / "3")
    capsys.readouterr()
    data = load(root)
    assert data.classes == ["0", "1", "2"] and files_and_labels(data) == expected
    reason = "it leads back up to a folder that holds every class (a loop), so it is not a class of its own"
    real = os.path.realpath(root / target)
    assert capsys.readouterr().err.splitlines() == [f"cnnkit: warning: skipping the link '{root / '3'}' (to '{real}'): {reason}."]
    code, report = check(run_cli, root)
    assert code == 0 and report["trainable"] is True and report["classes"] == ["0", "1", "2"]
    assert report["counts"] == {"train": {"0": 4, "1": 4, "2": 4}, "val": {"0": 1, "1": 1, "2": 1}}
    assert report["links"] == [{"link": str(root / "3"), "target": real, "reason": reason}]


THREE = {"0": 4, "1": 6, "2": 4}
"""Training images per class of the folder below (5, 7 and 5 images), read once each."""


@pytest.mark.parametrize("links, how, labels, counts", [
    ({"3": "1"}, "'{root}/3' is a link to the class folder '{root}/1'", ("1", "3"), THREE),
    ({"3": "1/sub"}, "'{root}/3' ('{root}/1/sub') is inside the class folder '{root}/1', reached through a link", ("1", "3"), THREE),
    ({"3": "../outside", "4": "../outside"}, "'{root}/3' and '{root}/4' are links to one folder ('{outside}')", ("3", "4"),
     {**THREE, "3": 2}),
])
def test_a_class_folder_linked_to_another_class_is_refused(tmp_path, make_images, run_cli, links, how, labels, counts):
    """Skipping it would drop a class the folder shows; reading it would teach another class's images as its own."""
    root = three_classes(tmp_path / "DATA", make_images, count=5)
    make_images(root / "1" / "sub", 2, (128, 128, 128), seed=4)
    make_images(tmp_path / "outside", 3, (60, 60, 60), seed=5)
    for name, target in links.items():
        os.symlink(target, root / name)
    problem = (how.format(root=root, outside=tmp_path / "outside") +
               f", so its images would be read as class '{labels[0]}' and as class '{labels[1]}'; keep it in the class it "
               "belongs to and remove the link from the other")
    with pytest.raises(UsageError) as refused:
        load(root)
    assert str(refused.value) == problem[0].upper() + problem[1:] + "."
    assert run_cli("train", "--data", str(root), "--epochs", "1").code == 2
    code, report = check(run_cli, root)
    assert code == 1 and report["problems"] == [problem] and report["classes"] == sorted(counts)
    assert report["counts"]["train"] == counts, "every folder read once, the refused one not at all"


def test_a_val_class_linked_to_the_train_class_is_refused(tmp_path, make_images, run_cli):
    root = tmp_path / "S"
    for split in ("train", "val"):
        for label, value in enumerate((0, 255)):
            if (split, label) != ("val", 1):
                make_images(root / split / str(label), 4, (value,) * 3, seed=label + 2 * (split == "val"))
    os.symlink("../train/1", root / "val" / "1")
    problem = (f"'{root / 'val' / '1'}' is a link to the class folder '{root / 'train' / '1'}', so its images would be "
               "both train and val images (leakage); give val images of its own")
    with pytest.raises(UsageError, match="leakage"):
        load(root)
    result = run_cli("train", "--data", str(root), "--epochs", "1")
    assert result.code == 2 and result.err.strip() == f"Error: {problem}."
    code, report = check(run_cli, root)
    assert code == 1 and report["problems"] == [problem]
    assert report["counts"]["train"] == {"0": 4, "1": 4} and report["counts"]["val"] == {"0": 4, "1": 0}


def test_a_split_folder_linked_to_another_split_is_refused(tmp_path, make_images, run_cli):
    root = tmp_path / "S"
    make_images(root / "train" / "a", 3, (0, 0, 0))
    make_images(root / "train" / "b", 3, (255, 255, 255))
    os.symlink("train", root / "val")
    with pytest.raises(UsageError) as refused:
        load(root)
    assert str(refused.value) == (f"'{root / 'val'}' is a link to the split folder '{root / 'train'}', so the same images "
                                  "would be train and val images (leakage); give each split its own images.")
    code, report = check(run_cli, root)
    assert code == 1 and "leakage" in report["problems"][0]


def test_one_folder_outside_the_data_is_read_once_and_refused_from_two_classes(tmp_path, make_images, run_cli, capsys):
    root = three_classes(tmp_path / "DATA", make_images, count=5)
    make_images(tmp_path / "ext", 2, (60, 60, 60), seed=7)  # images of no class
    os.symlink(tmp_path / "ext", root / "0" / "x")
    os.symlink(tmp_path / "ext", root / "0" / "y")
    data = load(root)
    assert torch.cat([data.train.labels, data.val.labels]).bincount().tolist() == [7, 5, 5]
    assert f"cnnkit: note: skipping '{root / '0' / 'y'}': a folder already read (through another link)." in capsys.readouterr().err
    assert check(run_cli, root)[0] == 0

    os.symlink(tmp_path / "ext", root / "1" / "x")
    problem = (f"'{root / '0' / 'x'}' and '{root / '1' / 'x'}' lead to one folder ('{tmp_path / 'ext'}'), so its images "
               "would be read as class '0' and as class '1'; keep it in the class it belongs to and remove the link from the other")
    result = run_cli("train", "--data", str(root), "--epochs", "1")
    assert result.code == 2 and result.err.splitlines()[-1] == f"Error: {problem[0].upper()}{problem[1:]}."
    code, report = check(run_cli, root)
    assert code == 1 and report["problems"] == [problem]
    assert report["counts"]["train"] == {"0": 6, "1": 4, "2": 4} and report["duplicates"] == [], "read once, under class 0"


def test_one_outside_folder_in_train_and_val_of_a_class_is_read_for_train_only(tmp_path, make_images, run_cli, capsys):
    root = tmp_path / "S"
    for split in ("train", "val"):
        for label, value in enumerate((0, 255)):
            make_images(root / split / str(label), 3, (value,) * 3, seed=label + 2 * (split == "val"))
    make_images(tmp_path / "ext", 4, (60, 60, 60), seed=7)
    os.symlink(tmp_path / "ext", root / "train" / "0" / "more")
    os.symlink(tmp_path / "ext", root / "val" / "0" / "more")
    data = load(root)
    assert data.train.labels.bincount().tolist() == [7, 3] and data.val.labels.bincount().tolist() == [3, 3]
    assert (f"skipping the link '{root / 'val' / '0' / 'more'}' (to '{tmp_path / 'ext'}'): it leads to a folder already "
            f"read as train images (through '{root / 'train' / '0' / 'more'}'), which are not also val images.") in capsys.readouterr().err
    code, report = check(run_cli, root)
    assert code == 0 and report["leaks"] == [] and report["counts"]["val"] == {"0": 3, "1": 3}


def test_a_file_link_into_another_class_is_read_under_its_own_class_only(tmp_path, make_images, run_cli, capsys):
    root = three_classes(tmp_path / "DATA", make_images, count=5)
    expected = plain_copy(tmp_path, root, make_images, count=5)
    os.symlink("../1/img000.png", root / "0" / "stolen.png")
    os.symlink("img001.png", root / "0" / "again.png")  # the same file twice in its own class: read once
    capsys.readouterr()
    assert files_and_labels(load(root)) == expected
    err = capsys.readouterr().err.splitlines()
    assert err == [f"cnnkit: note: skipping '{root / '0' / 'again.png'}': a file already read (through another link).",
                   f"cnnkit: warning: skipping the link '{root / '0' / 'stolen.png'}' (to '{root / '1' / 'img000.png'}'): "
                   "it leads to '1/img000.png' of the data, whose images belong there, not here."]
    code, report = check(run_cli, root)
    assert code == 0 and report["conflicts"] == [] and report["duplicates"] == []
    assert [item["link"] for item in report["links"]] == [str(root / "0" / "again.png"), str(root / "0" / "stolen.png")]


def test_one_file_outside_the_data_linked_from_two_classes_is_refused(tmp_path, make_images, run_cli):
    root = three_classes(tmp_path / "DATA", make_images, count=5)
    make_images(tmp_path / "ext", 1, (60, 60, 60), seed=7)
    os.symlink(tmp_path / "ext" / "img000.png", root / "0" / "x.png")
    os.symlink(tmp_path / "ext" / "img000.png", root / "2" / "x.png")
    with pytest.raises(UsageError, match=f"lead to one file \\('{tmp_path / 'ext' / 'img000.png'}'\\), so its images would "
                                         "be read as class '0' and as class '2'"):
        load(root)
    code, report = check(run_cli, root)
    assert code == 1 and report["counts"]["train"] == {"0": 5, "1": 4, "2": 4}


def test_links_from_a_class_folder_outside_the_data(tmp_path, make_images, run_cli, capsys):
    """Class folders linked in from elsewhere (a dataset assembled from links) are read, but
    what they link to is held to the same rules: not the data, not above it, not another class."""
    root = tmp_path / "data" / "DATA"
    make_images(tmp_path / "store" / "zeros", 4, (0, 0, 0))
    make_images(tmp_path / "store" / "ones", 4, (255, 255, 255), seed=1)
    make_images(root / "2", 4, (128, 128, 128), seed=2)
    os.symlink(tmp_path / "store" / "zeros", root / "0")
    os.symlink(tmp_path / "store" / "ones", root / "1")
    for name, target in (("data", root), ("up", tmp_path / "data"), ("ones", tmp_path / "store" / "ones")):
        os.symlink(target, tmp_path / "store" / "zeros" / name)
    data = load(root)
    assert torch.cat([data.train.labels, data.val.labels]).bincount().tolist() == [4, 4, 4]
    err = capsys.readouterr().err
    above = "it leads to the data folder or above it (a loop), whose classes' images are not this folder's"
    assert f"skipping the link '{root / '0' / 'data'}' (to '{root}'): {above}." in err
    assert f"skipping the link '{root / '0' / 'up'}' (to '{tmp_path / 'data'}'): {above}." in err
    assert (f"skipping the link '{root / '0' / 'ones'}' (to '{tmp_path / 'store' / 'ones'}'): it leads into the class folder "
            f"'{root / '1'}', whose images belong there, not here.") in err
    code, report = check(run_cli, root)
    assert code == 0 and len(report["links"]) == 3 and report["counts"]["train"] == {"0": 3, "1": 3, "2": 3}
