"""Bad input, each a one-line usage error or one warning that says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cnnkit_csvdata.dataset import load_csv

from cnnkit.contracts import DataRequest, DataSplits, UsageError


def load(data_dir: Path, **request: object) -> DataSplits:
    return load_csv(DataRequest(image_size=(12, 12), channels=1, data_dir=str(data_dir), **request))  # type: ignore[arg-type]


def refused(data_dir: Path, capsys: pytest.CaptureFixture[str], **request: object) -> str:
    with pytest.raises(UsageError) as raised:
        load(data_dir, **request)
    message = str(raised.value)
    assert "\n" not in message
    return message


def warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("cnnkit: warning: ")]


def edit(folder: Path, change: str, to: str) -> None:
    path = folder / "labels.csv"
    text = path.read_text()
    assert change in text
    path.write_text(text.replace(change, to, 1))


def append(folder: Path, *lines: str) -> None:
    with open(folder / "labels.csv", "a") as f:
        f.write("".join(line + "\n" for line in lines))


def count(data: DataSplits) -> int:
    return len(data.train) + len(data.val)


def test_a_folder_without_labels_csv_names_the_csv_files_it_has(kaggle, capsys):
    (kaggle / "labels.csv").rename(kaggle / "train_labels.csv")
    message = refused(kaggle, capsys)
    assert "has no labels.csv" in message and f"--data-dir {kaggle / 'train_labels.csv'}" in message


def test_a_file_that_is_not_a_csv_is_refused(kaggle, capsys):
    assert "is not a CSV file" in refused(kaggle / "train" / "d000.png", capsys)


def test_columns_without_a_label_column_are_named(kaggle, capsys):
    text = (kaggle / "labels.csv").read_text().splitlines()
    (kaggle / "labels.csv").write_text("\n".join(f"{row},x" for row in text).replace("id,label,x", "id,kind,extra"))
    message = refused(kaggle, capsys)
    assert "'id', 'kind', 'extra'" in message and "none of them is the label column" in message and "target" in message


def test_a_headerless_table_of_three_columns_asks_for_a_header(kaggle, capsys):
    text = (kaggle / "labels.csv").read_text().splitlines()[1:]
    (kaggle / "labels.csv").write_text("\n".join(f"{row},1" for row in text))
    assert "has no header and 3 column(s)" in refused(kaggle, capsys)


def test_a_short_line_is_named_by_its_number(kaggle, capsys):
    append(kaggle, "lonely")
    assert "line 38 has 1 column(s), fewer than the 2" in refused(kaggle, capsys)


def test_an_empty_table_and_a_header_alone_are_refused(kaggle, capsys):
    (kaggle / "labels.csv").write_text("\n\n")
    assert "is empty" in refused(kaggle, capsys)
    (kaggle / "labels.csv").write_text("id,label\n")
    assert "has a header but no rows" in refused(kaggle, capsys)


def test_a_table_that_is_not_utf8_is_refused(kaggle, capsys):
    (kaggle / "labels.csv").write_bytes((kaggle / "labels.csv").read_bytes() + "caf\xe9,dark\n".encode("latin-1"))
    assert "is not UTF-8 text" in refused(kaggle, capsys)


def test_images_nowhere_to_be_found_are_refused(kaggle, capsys):
    (kaggle / "train").rename(kaggle / "pictures")
    message = refused(kaggle, capsys)
    assert "none of the images labels.csv names is in" in message and "'d000'" in message


def test_rows_naming_missing_files_are_skipped_with_one_warning(kaggle, capsys):
    append(kaggle, "ghost1,dark", "ghost2,mid")
    data = load(kaggle)
    assert count(data) == 36
    [warning] = warnings(capsys)
    assert "skipping 2 rows of labels.csv whose image is not in" in warning and "'ghost1' (line 38)" in warning
    assert "add the files or delete the rows" in warning


def test_duplicate_rows_are_used_once(kaggle, capsys):
    append(kaggle, "d001,dark", "d001.png,dark")
    assert count(load(kaggle)) == 36
    [warning] = warnings(capsys)
    assert "lists 1 image more than once with the same label ('d001' on lines 3, 38, 39)" in warning


def test_an_image_labelled_twice_differently_is_left_out(kaggle, capsys):
    append(kaggle, "d001,light")
    data = load(kaggle)
    assert count(data) == 35
    [warning] = warnings(capsys)
    assert "leaving out 1 image that labels.csv labels differently" in warning
    assert "'d001': 'dark' (line 3), 'light' (line 38)" in warning


def test_empty_labels_and_file_names_are_skipped(kaggle, capsys):
    edit(kaggle, "d001,dark", "d001,")
    append(kaggle, ",dark")
    assert count(load(kaggle)) == 35
    [warning] = warnings(capsys)
    assert "skipping 2 rows of labels.csv with an empty file name or label: lines 3, 38" in warning


def test_a_name_matching_two_images_is_skipped(kaggle, capsys):
    (kaggle / "train" / "d001.jpg").write_bytes((kaggle / "train" / "d001.png").read_bytes())
    assert count(load(kaggle)) == 35
    [warning] = warnings(capsys)
    assert "naming several images" in warning and "write the file names with their extensions" in warning


def test_unreadable_images_are_skipped_one_warning_each_and_counted(kaggle, capsys):
    (kaggle / "train" / "d001.png").write_bytes(b"not a png")
    data = (kaggle / "train" / "m002.png").read_bytes()
    (kaggle / "train" / "m002.png").write_bytes(data[: len(data) // 2])
    loaded = load(kaggle)
    assert count(loaded) == 34
    assert [path.rsplit("/", 1)[1] for path, _ in loaded.skipped] == ["d001.png", "m002.png"]
    lines = warnings(capsys)
    assert len(lines) == 2 and all(line.startswith("cnnkit: warning: skipping unreadable image") for line in lines)


def test_a_class_without_readable_images_is_left_out_with_a_warning(kaggle, capsys):
    for path in (kaggle / "train").glob("m*.png"):
        path.write_bytes(b"")
    data = load(kaggle)
    assert data.classes == ["dark", "light"]
    assert "leaving out 1 class of labels.csv without a readable image (mid" in warnings(capsys)[-1]


def test_a_class_of_one_image_is_warned_about_as_never_validated(kaggle, capsys):
    append(kaggle, "d001.png,rare")
    edit(kaggle, "d001,dark\n", "")
    data = load(kaggle)
    assert data.classes == ["dark", "light", "mid", "rare"]
    assert torch.equal(data.val.labels.bincount(minlength=4)[3], torch.tensor(0))
    [warning] = warnings(capsys)
    assert "1 class of labels.csv has only one image (rare), which trains but is never validated" in warning


def test_one_class_is_not_a_classifier(make_kaggle, tmp_path, capsys):
    make_kaggle(tmp_path, shades={"dark": 30})
    assert "has readable images of 1 class ('dark'); a classifier needs at least 2" in refused(tmp_path, capsys)


def test_val_split_must_hold_something_out(kaggle, capsys):
    assert "--val-split must be between 0 and 1 (got 0.0)" in refused(kaggle, capsys, val_split=0.0)
