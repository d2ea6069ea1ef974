"""``cnnkit data check`` finds every planted problem and says what training would do."""

import json
import shutil

from cnnkit.contracts import DataRequest
from cnnkit.data.folder import load_folder


def test_check_finds_every_planted_problem(run_cli, image_folder, broken_files):
    dark, light = image_folder / "train" / "dark", image_folder / "train" / "light"
    reasons = broken_files(dark)
    shutil.copy(dark / "img000.png", dark / "again.png")  # a duplicate inside train
    shutil.copy(light / "img003.png", image_folder / "val" / "light" / "leaked.png")  # the same image in train and val
    (light / "img011.png").unlink()

    result = run_cli("data", "check", str(image_folder), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["trainable"] is True and report["layout"] == "train/ + val/ split folders"
    assert report["classes"] == ["dark", "light"]
    assert report["counts"] == {"train": {"dark": 13, "light": 11}, "val": {"dark": 4, "light": 5}}
    assert report["imbalance"] == round(13 / 11, 3)
    assert {item["file"]: item["reason"].split(" ")[0] for item in report["unreadable"]} == {
        str(dark / name): why.split(" ")[0] for name, why in reasons.items()
    }
    assert [str(dark / "again.png"), str(dark / "img000.png")] in report["duplicates"]
    assert report["leaks"] == [{"splits": ["train", "val"], "files": [str(light / "img003.png"), str(image_folder / "val" / "light" / "leaked.png")]}]
    assert report["sizes"] == {"width": [12, 12, 12], "height": [12, 12, 12]} and report["modes"] == {"RGB": 33}

    text = run_cli("data", "check", str(image_folder))
    assert "leakage: the same image is in train and val" in text.out and text.out.rstrip().endswith("trainable")
    assert f"{dark / 'half.jpg'}: truncated (the file ends early)" in text.out


def test_what_check_predicts_is_what_training_reads(run_cli, tmp_path, make_images):
    make_images(tmp_path / "a", 9, (0, 0, 0))
    make_images(tmp_path / "b", 14, (255, 255, 255))
    report = json.loads(run_cli("data", "check", str(tmp_path), "--json", "--val-split", "0.3", "--seed", "7").out)
    data = load_folder(tmp_path, DataRequest(image_size=(8, 8), channels=1, val_split=0.3, seed=7))
    assert sum(report["counts"]["train"].values()) == len(data.train)
    assert report["counts"]["val"] == {"a": int(data.val.labels.eq(0).sum()), "b": int(data.val.labels.eq(1).sum())}
    assert "validation split off train by --val-split 0.3" in report["plan"][0]


def test_a_folder_that_cannot_be_trained_on_exits_1_with_the_reasons(run_cli, tmp_path, make_images):
    make_images(tmp_path / "a", 3, (0, 0, 0))
    make_images(tmp_path / "b", 2, (255, 255, 255))
    for path in (tmp_path / "b").iterdir():
        path.write_bytes(b"")
    result = run_cli("data", "check", str(tmp_path))
    assert result.code == 1
    assert result.out.rstrip().endswith("not trainable:\n  class 'b' has no readable training images")

    shutil.rmtree(tmp_path / "b")
    result = run_cli("data", "check", str(tmp_path), "--json")
    assert result.code == 1
    assert json.loads(result.out)["problems"] == [f"'{tmp_path}' has 1 class folder(s); a classifier needs at least 2"]


def test_a_missing_folder_is_a_usage_error(run_cli, tmp_path):
    result = run_cli("data", "check", str(tmp_path / "nope"))
    assert result.code == 2
    assert result.err.strip() == f"Error: '{tmp_path / 'nope'}' does not exist; pass an image folder."


def test_a_val_class_without_readable_images_makes_the_folder_untrainable(run_cli, image_folder):
    for path in (image_folder / "val" / "light").iterdir():
        path.write_bytes(b"")
    result = run_cli("data", "check", str(image_folder), "--json")
    assert result.code == 1
    assert json.loads(result.out)["problems"] == ["class 'light' has no readable val/ images"]
    train = run_cli("train", "--data", str(image_folder), "--epochs", "1")
    assert train.code == 2 and "has no readable images" in train.err


def test_label_conflicts_are_listed_per_pair_of_classes(run_cli, tmp_path, make_images):
    """Twenty copies between two classes are one line with a count and three examples (all of them in --json)."""
    for name, value in (("a", 0), ("b", 128)):
        make_images(tmp_path / name, 20, (value,) * 3, seed=len(name) + value)
    (tmp_path / "c").mkdir()
    for i in range(20):
        shutil.copy(tmp_path / "a" / f"img{i:03d}.png", tmp_path / "c" / f"copy{i:03d}.png")
    shutil.copy(tmp_path / "b" / "img005.png", tmp_path / "a" / "from-b.png")
    result = run_cli("data", "check", str(tmp_path))
    assert result.code == 1
    lines = result.out.splitlines()
    start = lines.index("label conflicts (21 image(s) in two classes at once):")
    a, c = tmp_path / "a", tmp_path / "c"
    assert lines[start + 1:start + 3] == [
        f"  classes a and c: 20 image(s): {a / 'img000.png'} = {c / 'copy000.png'}; {a / 'img001.png'} = {c / 'copy001.png'}; "
        f"{a / 'img002.png'} = {c / 'copy002.png'}; and 17 more",
        f"  classes a and b: 1 image(s): {a / 'from-b.png'} = {tmp_path / 'b' / 'img005.png'}",
    ]
    assert not lines[start + 3].startswith("  classes")
    report = json.loads(run_cli("data", "check", str(tmp_path), "--json").out)
    assert len(report["conflicts"]) == 21 and not any(c["same_file"] for c in report["conflicts"])
    assert report["problems"][0].startswith(f"21 image(s) are in two classes at once, so their labels contradict each other "
                                            f"(e.g. {a / 'from-b.png'} and {tmp_path / 'b' / 'img005.png'} hold the same image")
