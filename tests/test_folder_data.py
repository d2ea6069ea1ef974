import pytest
import torch

from cnnkit.contracts import DataRequest
from cnnkit.data.folder import load_folder
from cnnkit.data.splits import Split, StreamedSplit
from cnnkit.errors import UsageError


def load(root, size=(8, 8), channels=3, val_split=0.2, seed=0):
    return load_folder(root, DataRequest(image_size=size, channels=channels, val_split=val_split, seed=seed))


def in_memory(data):
    return {name: split.materialize() for name, split in data.splits().items()}


def test_train_val_layout_is_loaded_with_sorted_classes(image_folder):
    data = load(image_folder)
    assert data.classes == ["dark", "light"]
    assert isinstance(data.train, StreamedSplit), "folders stream until cnnkit decides they fit in memory"
    parts = in_memory(data)
    assert parts["train"].images.shape == (24, 3, 8, 8) and parts["train"].images.dtype == torch.uint8
    assert parts["val"].images.shape == (8, 3, 8, 8)
    assert data.test is None
    assert torch.equal(parts["train"].labels.bincount(), torch.tensor([12, 12]))
    dark = parts["train"].images[parts["train"].labels == 0].float().mean()
    light = parts["train"].images[parts["train"].labels == 1].float().mean()
    assert dark < 60 < 190 < light


def test_rgb_images_become_grayscale_for_a_one_channel_model(image_folder):
    data = load(image_folder, size=(28, 28), channels=1)
    assert data.train.materialize().images.shape[1:] == (1, 28, 28)


def test_single_folder_is_split_stratified_and_reproducibly(tmp_path, make_images):
    make_images(tmp_path / "a", 10, (0, 0, 0))
    make_images(tmp_path / "b", 10, (255, 255, 255))
    first = load(tmp_path, size=(6, 6), channels=1, val_split=0.3, seed=5)
    again = load(tmp_path, size=(6, 6), channels=1, val_split=0.3, seed=5)
    assert torch.equal(first.val.labels.bincount(), torch.tensor([3, 3]))
    assert len(first.train) == 14
    assert torch.equal(first.val.materialize().images, again.val.materialize().images)


def test_train_folder_without_val_is_split_by_val_split(tmp_path, make_images):
    make_images(tmp_path / "train" / "a", 5, (0, 0, 0))
    make_images(tmp_path / "train" / "b", 5, (255, 255, 255))
    data = load(tmp_path, size=(6, 6), val_split=0.4)
    assert (len(data.train), len(data.val)) == (6, 4)
    assert data.classes == ["a", "b"]


def test_test_folder_becomes_the_test_split(image_folder, make_images):
    make_images(image_folder / "test" / "dark", 2, (30, 30, 30))
    make_images(image_folder / "test" / "light", 3, (220, 220, 220))
    data = load(image_folder)
    assert data.test is not None and data.test.labels.tolist() == [0, 0, 1, 1, 1]


def test_val_folder_with_other_classes_is_refused(image_folder, make_images):
    make_images(image_folder / "val" / "extra", 1, (0, 0, 0))
    with pytest.raises(UsageError, match="Class folders of .* differ"):
        load(image_folder)


def test_a_class_whose_every_file_is_unreadable_is_refused(image_folder):
    for path in (image_folder / "train" / "dark").iterdir():
        path.write_bytes(b"")
    with pytest.raises(UsageError, match=r"Class folder '.*dark' has no readable images"):
        load(image_folder)


def test_both_paths_give_identical_batches_in_any_order(image_folder):
    data = load(image_folder)
    memory = data.train.materialize()
    assert isinstance(memory, Split)
    order = [torch.tensor([5, 0, 17]), torch.tensor([23, 1]), slice(2, 9)]
    for workers in (0, 2):
        streamed = list(data.train.batches(order, torch.device("cpu"), workers))
        indexed = list(memory.batches(order, torch.device("cpu")))
        assert len(streamed) == 3
        for (a, la), (b, lb) in zip(streamed, indexed):
            assert torch.equal(a, b) and torch.equal(la, lb)


def test_training_on_an_image_folder_reports_validation_accuracy(run_cli, image_folder, tmp_path):
    result = run_cli("train", "--data", str(image_folder), "--epochs", "3", "--batch-size", "8",
                     "--out", str(tmp_path / "runs"), "--name", "folder", "--quiet")
    assert result.code == 0, result.err
    assert "no test split" in result.out
    from cnnkit.engine.checkpoint import load_checkpoint

    best = load_checkpoint(tmp_path / "runs" / "folder" / "best.pt")
    assert best["classes"] == ["dark", "light"] and best["input_size"] == [1, 28, 28]
    assert best["data"] == str(image_folder)


@pytest.mark.slow
def test_streaming_and_in_memory_training_give_the_same_metrics(run_cli, image_folder, tmp_path):
    """The same seed gives the same run whichever path the images take; a budget too small for
    the folder makes auto stream it."""
    histories, errs = {}, {}
    for name, flags in {
        "memory": ["--data-in-memory", "yes"],
        "stream": ["--data-in-memory", "no"],
        "budget": ["--memory-budget", "0.00001"],
        "workers": ["--data-in-memory", "no", "--workers", "2"],
    }.items():
        result = run_cli("train", "--data", str(image_folder), "--epochs", "2", "--batch-size", "8", "--augment", "hflip",
                         "--out", str(tmp_path / "runs"), "--name", name, *flags)
        assert result.code == 0, result.err
        histories[name] = (tmp_path / "runs" / name / "metrics.csv").read_text().splitlines()
        errs[name] = result.err
        assert ("streaming 32 images" in result.err) == (name != "memory"), result.err
    def rows(lines):
        return [line.rsplit(",", 1)[0] for line in lines]  # the last column is seconds
    assert rows(histories["memory"]) == rows(histories["stream"]) == rows(histories["budget"]) == rows(histories["workers"])
    assert "more than --memory-budget 1e-05 GiB" in errs["budget"]


def test_the_crop_is_cut_before_resizing_so_thin_images_stay_small(tmp_path, monkeypatch):
    from PIL import Image

    from cnnkit.data.images import decode

    Image.new("L", (3, 90_000), 200).save(tmp_path / "thin.png")
    sizes = []
    original = Image.Image.resize

    def resize(self, size, *args, **kwargs):
        sizes.append(tuple(size))
        return original(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", resize)
    assert decode(tmp_path / "thin.png", (28, 28), 1).shape == (1, 28, 28)
    assert sizes == [(28, 28)], "only the target size is ever allocated"


def test_a_file_that_fails_only_when_decoded_keeps_streamed_batches_whole(image_folder, monkeypatch):
    """Another image of the batch stands in for it, so every process keeps its number and size of steps."""
    from cnnkit.data import images as images_module
    from cnnkit.data.images import UnreadableImage

    data = load(image_folder)
    bad = data.train.source.paths[data.train.indices[1]]
    real = images_module.decode

    def decode(path, *args):
        if str(path) == bad:
            raise UnreadableImage("damaged in the middle")
        return real(path, *args)

    monkeypatch.setattr("cnnkit.data.sources.decode", decode)
    [(images, labels)] = list(data.train.batches([torch.tensor([0, 1, 2])], torch.device("cpu")))
    assert images.shape[0] == 3 and torch.equal(images[1], images[0]) and labels[1] == labels[0]


def test_symlink_loops_are_read_once(image_folder):
    (image_folder / "train" / "dark" / "again").symlink_to(image_folder / "train" / "dark")
    assert len(load(image_folder).train) == 24
