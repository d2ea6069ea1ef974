"""What ``labels.csv`` and its images may look like: headers or none, ids or file names, the
images in train/, images/ or beside the file, numeric labels, the CSV file named directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cnnkit_csvdata.dataset import load_csv
from PIL import Image

from cnnkit.contracts import DataRequest, DataSplits, StreamedSplit


def load(data_dir: Path | str, **request: object) -> DataSplits:
    return load_csv(DataRequest(image_size=(12, 12), channels=1, data_dir=str(data_dir), **request))  # type: ignore[arg-type]


def sizes(data: DataSplits) -> list[int]:
    return torch.cat([data.train.labels, data.val.labels]).bincount().tolist()


@pytest.mark.parametrize("layout", [
    {"images": "train", "header": "id,label"},
    {"images": "images", "header": "image_id,class", "ids_only": False},
    {"images": ".", "header": "", "extension": ".jpg"},
    {"images": "Train", "header": "filename,target", "ids_only": False},
    {"images": "train", "header": "name,breed"},
])
def test_every_kaggle_layout_reads_the_same_classes(make_kaggle, tmp_path, layout):
    data = load(make_kaggle(tmp_path, **layout))  # type: ignore[arg-type]
    assert data.classes == ["dark", "light", "mid"]
    assert sizes(data) == [12, 12, 12]
    assert data.test is None and data.native == (1, 12, 12)


def test_images_are_streamed_from_disk_with_their_labels(shades, kaggle):
    data = load(kaggle)
    assert isinstance(data.train, StreamedSplit) and isinstance(data.val, StreamedSplit)
    memory = data.train.materialize()
    for index, name in enumerate(data.classes):
        shade = memory.images[memory.labels == index].float().mean().item()
        assert shade == pytest.approx(shades[name], abs=4)


def test_the_validation_split_is_stratified_and_follows_the_seed(kaggle):
    data = load(kaggle, val_split=0.25, seed=3)
    assert data.val.labels.bincount().tolist() == [3, 3, 3]
    def files(d: DataSplits) -> list[str]:
        return sorted(d.val.source.name(int(i)) for i in d.val.indices)  # type: ignore[union-attr]
    assert files(data) == files(load(kaggle, val_split=0.25, seed=3))
    assert files(data) != files(load(kaggle, val_split=0.25, seed=4))


def test_whole_number_labels_are_classes_in_numeric_order(make_kaggle, tmp_path):
    data = load(make_kaggle(tmp_path, shades={"10": 30, "2": 128, "0": 225}))
    assert data.classes == ["0", "2", "10"]


def test_a_bom_spaces_semicolons_blank_lines_and_crlf_are_read(make_kaggle, tmp_path):
    make_kaggle(tmp_path)
    rows = (tmp_path / "labels.csv").read_text().splitlines()
    text = "\r\n".join(" ; ".join(f"  {cell} " for cell in row.split(",")) for row in rows) + "\r\n\r\n"
    (tmp_path / "labels.csv").write_bytes(b"\xef\xbb\xbf" + text.replace(" id ", "ID").encode())
    data = load(tmp_path)
    assert data.classes == ["dark", "light", "mid"] and sizes(data) == [12, 12, 12]


def test_a_bom_before_the_first_file_name_is_not_part_of_it(make_kaggle, tmp_path, capsys):
    make_kaggle(tmp_path, header="")
    (tmp_path / "labels.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "labels.csv").read_bytes())
    assert sizes(load(tmp_path)) == [12, 12, 12]
    assert "warning" not in capsys.readouterr().err


def test_the_csv_file_itself_may_be_named_and_extra_columns_are_ignored(make_kaggle, tmp_path):
    make_kaggle(tmp_path)
    rows = (tmp_path / "labels.csv").read_text().splitlines()
    (tmp_path / "labels.csv").unlink()
    (tmp_path / "train_labels.csv").write_text("\n".join(f"{i},{row}" for i, row in enumerate(rows)).replace("0,id,label", "n,id,label"))
    data = load(tmp_path / "train_labels.csv")
    assert data.classes == ["dark", "light", "mid"] and sizes(data) == [12, 12, 12]


def test_file_names_may_be_paths_below_the_folder(make_kaggle, tmp_path):
    make_kaggle(tmp_path, header="path,label")
    header, *rows = (tmp_path / "labels.csv").read_text().splitlines()
    (tmp_path / "labels.csv").write_text("\n".join([header, *(f"train/{row}" for row in rows)]))
    assert sizes(load(tmp_path)) == [12, 12, 12]


def test_a_header_of_unknown_names_is_told_from_a_first_row(make_kaggle, tmp_path):
    make_kaggle(tmp_path, header="picture,kind")
    assert sizes(load(tmp_path)) == [12, 12, 12]


def test_the_current_folder_is_the_default(kaggle, monkeypatch):
    monkeypatch.chdir(kaggle)
    assert load("").classes == ["dark", "light", "mid"]


def test_rgb_images_are_read_at_the_size_and_channels_asked(make_kaggle, tmp_path):
    make_kaggle(tmp_path)
    Image.fromarray(np.full((30, 20, 3), (200, 10, 10), np.uint8)).save(tmp_path / "train" / "d000.png")
    data = load_csv(DataRequest(image_size=(8, 8), channels=3, data_dir=str(tmp_path)))
    images = torch.cat([data.train.materialize().images, data.val.materialize().images])
    assert images.shape[1:] == (3, 8, 8)
    assert data.native == (1, 12, 12)
