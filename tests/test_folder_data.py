import pytest
import torch

from cnnkit.data.folder import load_folder
from cnnkit.errors import UsageError


def test_train_val_layout_is_loaded_with_sorted_classes(image_folder):
    data = load_folder(image_folder, image_size=(8, 8), channels=3, val_split=0.2, seed=0)
    assert data.classes == ["dark", "light"]
    assert data.train.images.shape == (24, 3, 8, 8) and data.train.images.dtype == torch.uint8
    assert data.val.images.shape == (8, 3, 8, 8)
    assert data.test is None
    assert torch.equal(data.train.labels.bincount(), torch.tensor([12, 12]))
    dark = data.train.images[data.train.labels == 0].float().mean()
    light = data.train.images[data.train.labels == 1].float().mean()
    assert dark < 60 < 190 < light


def test_rgb_images_become_grayscale_for_a_one_channel_model(image_folder):
    data = load_folder(image_folder, image_size=(28, 28), channels=1, val_split=0.2, seed=0)
    assert data.train.images.shape[1:] == (1, 28, 28)


def test_single_folder_is_split_stratified_and_reproducibly(tmp_path, make_images):
    make_images(tmp_path / "a", 10, (0, 0, 0))
    make_images(tmp_path / "b", 10, (255, 255, 255))
    first = load_folder(tmp_path, image_size=(6, 6), channels=1, val_split=0.3, seed=5)
    again = load_folder(tmp_path, image_size=(6, 6), channels=1, val_split=0.3, seed=5)
    assert torch.equal(first.val.labels.bincount(), torch.tensor([3, 3]))
    assert len(first.train) == 14
    assert torch.equal(first.val.images, again.val.images)


def test_train_folder_without_val_is_split_by_val_split(tmp_path, make_images):
    make_images(tmp_path / "train" / "a", 5, (0, 0, 0))
    make_images(tmp_path / "train" / "b", 5, (255, 255, 255))
    data = load_folder(tmp_path, image_size=(6, 6), channels=3, val_split=0.4, seed=0)
    assert (len(data.train), len(data.val)) == (6, 4)
    assert data.classes == ["a", "b"]


def test_test_folder_becomes_the_test_split(image_folder, make_images):
    make_images(image_folder / "test" / "dark", 2, (30, 30, 30))
    make_images(image_folder / "test" / "light", 3, (220, 220, 220))
    data = load_folder(image_folder, image_size=(8, 8), channels=3, val_split=0.2, seed=0)
    assert data.test is not None and data.test.labels.tolist() == [0, 0, 1, 1, 1]


def test_val_folder_with_other_classes_is_refused(image_folder, make_images):
    make_images(image_folder / "val" / "extra", 1, (0, 0, 0))
    with pytest.raises(UsageError, match="Class folders of .* differ"):
        load_folder(image_folder, image_size=(8, 8), channels=3, val_split=0.2, seed=0)


def test_unreadable_image_names_the_file(image_folder):
    bad = image_folder / "train" / "dark" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(UsageError, match=r"Cannot read image '.*broken\.png'"):
        load_folder(image_folder, image_size=(8, 8), channels=3, val_split=0.2, seed=0)


def test_training_on_an_image_folder_reports_validation_accuracy(run_cli, image_folder, tmp_path):
    result = run_cli("train", "--data", str(image_folder), "--epochs", "3", "--batch-size", "8",
                     "--out", str(tmp_path / "runs"), "--name", "folder", "--quiet")
    assert result.code == 0, result.err
    assert "no test split" in result.out
    from cnnkit.engine.checkpoint import load_checkpoint

    best = load_checkpoint(tmp_path / "runs" / "folder" / "best.pt")
    assert best["classes"] == ["dark", "light"] and best["input_size"] == [1, 28, 28]
    assert best["data"] == str(image_folder)


def test_deep_images_are_scaled_to_8_bits_by_their_nominal_range(tmp_path):
    import numpy as np
    from PIL import Image

    from cnnkit.data.folder import read_image

    Image.fromarray(np.array([[0, 32768], [65535, 257]], np.uint16)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png", (2, 2), 1)[0].tolist() == [[0, 128], [255, 1]]
    Image.fromarray(np.array([[0, 2**30], [2**31 - 1, 65536]], np.int32), "I").save(tmp_path / "b.tif")
    assert read_image(tmp_path / "b.tif", (2, 2), 1)[0].tolist() == [[0, 64], [127, 0]]
    Image.fromarray(np.array([[0, 0.5], [1.0, 0.25]], np.float32), "F").save(tmp_path / "c.tif")
    assert read_image(tmp_path / "c.tif", (2, 2), 3)[1].tolist() == [[0, 128], [255, 64]]
    Image.fromarray(np.array([[-5, 3]], np.int32), "I").save(tmp_path / "d.tif")
    with pytest.raises(UsageError, match=r"d\.tif' holds negative pixel values"):
        read_image(tmp_path / "d.tif", (2, 2), 1)


def test_the_crop_is_cut_before_resizing_so_thin_images_stay_small(tmp_path, monkeypatch):
    from PIL import Image

    from cnnkit.data.folder import read_image

    Image.new("L", (3, 90_000), 200).save(tmp_path / "thin.png")
    sizes = []
    original = Image.Image.resize

    def resize(self, size, *args, **kwargs):
        sizes.append(tuple(size))
        return original(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", resize)
    assert read_image(tmp_path / "thin.png", (28, 28), 1).shape == (1, 28, 28)
    assert sizes == [(28, 28)], "only the target size is ever allocated"
