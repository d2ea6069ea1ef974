"""The benchmark sets by name: small files in each dataset's real on-disk format, read by
torchvision's own classes through cnnkit (no network, the loaders themselves not mocked)."""

import hashlib
import pickle
import struct

import numpy as np
import pytest
import torch

from cnnkit.contracts import DataRequest
from cnnkit.data.named import load_named

RNG = np.random.default_rng(0)


def idx_file(path, array):
    """MNIST's IDX format: big-endian magic (type 0x08 = uint8, then the rank), sizes, bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def mnist_files(root, folder, train=40, test=10):
    """Images whose brightness is their label, so a model can learn them."""
    for prefix, n in (("train", train), ("t10k", test)):
        labels = np.arange(n) % 10
        images = (labels[:, None, None] * 25 + RNG.integers(0, 5, (n, 28, 28))).astype(np.uint8)
        idx_file(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", images)
        idx_file(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels)
    return labels


def cifar_files(root, monkeypatch, hundred=False):
    """CIFAR's python pickles; torchvision checks each file's MD5 before it unpickles it, so the
    test registers the MD5s of the files it wrote (the reading code runs unchanged)."""
    import torchvision.datasets as tvd

    cls = tvd.CIFAR100 if hundred else tvd.CIFAR10
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "fine_labels" if hundred else "labels"
    classes = 100 if hundred else 10

    def write(name, obj):
        (folder / name).write_bytes(pickle.dumps(obj))
        return [name, hashlib.md5((folder / name).read_bytes()).hexdigest()]

    train_list = [write(name, {"data": RNG.integers(0, 255, (20, 3072), dtype=np.uint8),
                                label_key: list(np.arange(20) % classes)}) for name, _ in cls.train_list]
    test_list = [write(name, {"data": RNG.integers(0, 255, (10, 3072), dtype=np.uint8),
                               label_key: list(np.arange(10) % classes)}) for name, _ in cls.test_list]
    names = [f"class{i}" for i in range(classes)]
    meta = write(cls.meta["filename"], {cls.meta["key"]: names})
    monkeypatch.setattr(cls, "train_list", train_list)
    monkeypatch.setattr(cls, "test_list", test_list)
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": meta[1]})
    return names


def request(channels=1, size=(28, 28), root="", val_split=0.25):
    return DataRequest(image_size=size, channels=channels, val_split=val_split, seed=0, data_dir=str(root))


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_mnist_family_is_read_by_torchvision_with_its_statistics(tmp_path, name, folder):
    mnist_files(tmp_path, folder)
    data = load_named(name, request(root=tmp_path))
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 10)
    assert torch.equal(data.val.labels.bincount(), torch.ones(10, dtype=torch.long)), "stratified"
    assert data.train.images.shape[1:] == (1, 28, 28), "stored at the model's size: in memory as it is"
    assert torch.equal(data.test.images[:, 0, 0, 0] // 25, data.test.labels), "pixels and labels stay paired"
    assert len(data.classes) == 10 and data.mean is not None and len(data.mean) == 1


def test_grayscale_data_for_a_colour_model_of_another_size_streams_with_repeated_statistics(tmp_path):
    mnist_files(tmp_path, "MNIST")
    data = load_named("mnist", request(channels=3, size=(32, 32), root=tmp_path))
    assert data.mean == [0.1307] * 3 and data.std == [0.3081] * 3
    images = data.test.materialize().images
    assert images.shape == (10, 3, 32, 32) and torch.equal(images[:, 0], images[:, 2])


def test_cifar10_and_cifar100_are_read_by_torchvision(tmp_path, monkeypatch):
    names = cifar_files(tmp_path / "a", monkeypatch)
    data = load_named("cifar10", request(channels=3, size=(32, 32), root=tmp_path / "a", val_split=0.2))
    assert data.classes == names and data.mean == [0.4914, 0.4822, 0.4465]
    assert (len(data.train) + len(data.val), len(data.test)) == (100, 10)
    assert data.train.images.shape[1:] == (3, 32, 32)
    cifar_files(tmp_path / "b", monkeypatch, hundred=True)
    data = load_named("cifar100", request(channels=1, size=(32, 32), root=tmp_path / "b", val_split=0.2))
    assert len(data.classes) == 100 and data.mean is None, "colour turned grayscale: cnnkit measures its own"


def test_svhn_is_read_by_torchvision_from_mat_files(tmp_path, monkeypatch):
    scipy_io = pytest.importorskip("scipy.io")
    import torchvision.datasets as tvd

    split_list = {}
    for split, n in (("train", 30), ("test", 10)):
        labels = (np.arange(n) % 10) + 1  # SVHN stores the digit 0 as label 10
        images = np.broadcast_to((labels * 20).astype(np.uint8), (32, 32, 3, n)).copy()
        path = tmp_path / f"{split}_32x32.mat"
        scipy_io.savemat(path, {"X": images, "y": labels[:, None]})
        split_list[split] = ["unused", path.name, hashlib.md5(path.read_bytes()).hexdigest()]
    monkeypatch.setattr(tvd.SVHN, "split_list", split_list)
    data = load_named("svhn", request(channels=3, size=(32, 32), root=tmp_path, val_split=0.2))
    test = data.test
    assert test.labels.tolist()[:3] == [1, 2, 3] and test.labels.tolist()[9] == 0
    assert torch.equal(test.images[:, 0, 0, 0], (((test.labels - 1) % 10 + 1) * 20).to(torch.uint8))


def test_offline_with_the_files_missing_names_the_files_and_folder(run_cli, tmp_path):
    result = run_cli("train", "--data", "cifar10", "--data-dir", str(tmp_path), "--out", str(tmp_path / "runs"),
                     env={"CNNKIT_OFFLINE": "1"})
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert lines == [
        f"Error: Dataset 'cifar10' is not in '{tmp_path / 'cifar-10-batches-py'}' and downloads are off (CNNKIT_OFFLINE is "
        "set); put data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch, batches.meta there "
        "(as torchvision's CIFAR10 stores them), or pass --data-dir to the folder that holds them."
    ]
    assert not (tmp_path / "runs").exists()


def test_a_failed_download_is_one_line_not_a_traceback(run_cli, tmp_path, monkeypatch):
    """The real download code runs against a port nothing listens on."""
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    result = run_cli("train", "--data", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "runs"))
    assert result.code == 1
    error = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "could not be downloaded (" in error[0] and "Traceback" not in result.err
    assert "train-images-idx3-ubyte" in error[0] and str(tmp_path / "MNIST" / "raw") in error[0]
    assert result.out == ""


def test_mnist_trains_from_its_files_and_the_checkpoint_keeps_classes_and_statistics(run_cli, tmp_path):
    mnist_files(tmp_path / "data", "MNIST", train=200, test=50)
    result = run_cli("train", "--data", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "2",
                     "--out", str(tmp_path / "runs"), "--name", "m", "--quiet")
    assert result.code == 0, result.err
    assert "test acc" in result.out
    from cnnkit.engine.checkpoint import load_checkpoint

    best = load_checkpoint(tmp_path / "runs" / "m" / "best.pt")
    assert best["classes"][0] == "0 - zero" and best["normalization"] == {"mean": [0.1307], "std": [0.3081]}
    assert best["data"] == "mnist"



def test_damaged_files_are_named_as_damaged_not_missing(run_cli, tmp_path):
    mnist_files(tmp_path, "MNIST")
    raw = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:2000])  # the header promises more images than follow
    result = run_cli("train", "--data", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "runs"),
                     env={"CNNKIT_OFFLINE": "1"})
    assert result.code == 1
    [line] = result.err.strip().splitlines()
    assert line.startswith(f"Error: Dataset 'mnist' in '{tmp_path / 'MNIST' / 'raw'}' could not be read (RuntimeError: ")
    assert line.endswith("its files are damaged or not MNIST's. Replace them, or delete them to download them again.")


def test_labels_out_of_range_are_refused(tmp_path):
    from cnnkit.errors import CnnkitError

    mnist_files(tmp_path, "MNIST")
    idx_file(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.array([42] * 10))
    with pytest.raises(CnnkitError, match=r"10 images, 10 labels from 42 to 42 for 10 classes"):
        load_named("mnist", request(root=tmp_path))
