"""Unbalanced classes: ``--class-weights`` (weights, their files, the weighted loss), ``--sampler
balanced`` (class frequencies, seeds, resume, DDP), data check's imbalance advice, evaluate's
balanced accuracy and macro F1, and the rare class's recall on a folder with one class 10x rarer."""

import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cnnkit.data.splits import DataSplits, Split
from cnnkit.engine.balance import balanced_draws, class_weights, inverse_frequency
from cnnkit.engine.checkpoint import load_checkpoint
from cnnkit.engine.precision import Precision
from cnnkit.engine.progress import Progress
from cnnkit.engine.strategies import SingleProcessStrategy, shard_steps
from cnnkit.engine.trainer import Trainer
from cnnkit.errors import UsageError
from cnnkit.inference.evaluate import balanced_accuracy, macro_f1, per_class
from tests.test_resume import stop_after

NAMES = ["cat", "dog", "owl"]
LABELS = torch.tensor([0] * 6 + [1] * 3 + [2])  # 6, 3 and 1 images


def digits_folder(root: Path, digits: list[int], rare: int, keep: float = 0.1) -> Path:
    """The shipped digits as an ImageFolder tree: train/ from their training split (``rare``
    thinned to ``keep`` of its images), test/ from their validation and test splits, in full."""
    with resources.files("cnnkit.data").joinpath("digits.npz").open("rb") as f:
        arrays = np.load(f)
        images, labels, split = arrays["images"], arrays["labels"], arrays["split"]
    for digit in digits:
        train = np.flatnonzero((labels == digit) & (split == 0))
        if digit == rare:
            train = train[:round(len(train) * keep)]
        for part, indices in (("train", train), ("test", np.flatnonzero((labels == digit) & (split > 0)))):
            (root / part / str(digit)).mkdir(parents=True)
            for i in indices:
                Image.fromarray(images[i].astype(np.uint8)).save(root / part / str(digit) / f"{i}.png")
    return root


# --class-weights: the weights


def test_auto_weights_are_n_over_k_times_the_class_count():
    assert inverse_frequency(LABELS, NAMES).tolist() == pytest.approx([10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)])
    assert class_weights("none", LABELS, NAMES) is None
    assert torch.equal(class_weights("auto", LABELS, NAMES), inverse_frequency(LABELS, NAMES))


def test_auto_weights_equal_scikit_learns_balanced_weights():
    utils = pytest.importorskip("sklearn.utils")
    expected = utils.compute_class_weight("balanced", classes=np.arange(3), y=LABELS.numpy())
    assert inverse_frequency(LABELS, NAMES).tolist() == pytest.approx(expected.tolist())


def test_auto_weights_refuse_a_class_without_training_images():
    with pytest.raises(UsageError, match=r"^--class-weights auto: class\(es\) 'owl' have no training images"):
        inverse_frequency(torch.tensor([0, 0, 1]), NAMES)


def test_a_weights_file_is_a_list_in_class_order_or_an_object_by_class_name(tmp_path):
    listed, named = tmp_path / "listed.json", tmp_path / "named.json"
    listed.write_text("[1, 2.5, 4]")
    named.write_text('{"owl": 4, "cat": 1, "dog": 2.5}')
    assert class_weights(str(listed), LABELS, NAMES).tolist() == [1.0, 2.5, 4.0]
    assert class_weights(str(named), LABELS, NAMES).tolist() == [1.0, 2.5, 4.0]


@pytest.mark.parametrize("content, message", [
    (None, r"^--class-weights '.*w\.json' does not exist; pass auto, none, or a JSON file of per-class weights\.$"),
    ("[1, 2]", r"^--class-weights '.*' holds 2 weight\(s\), but the data has 3 classes \(cat, dog, owl\); give one per class"),
    ('{"cat": 1, "dgo": 2, "owl": 3}', r"^--class-weights '.*': unknown class 'dgo'\. Did you mean 'dog'\? The data's classes: "
                                       r"cat, dog, owl\.$"),
    ('{"cat": 1, "owl": 3}', r"^--class-weights '.*' gives no weight for class\(es\) 'dog'; name every class\.$"),
    ("[1, -2, 3]", r"^--class-weights '.*': the weight of class 'dog' must be a finite number above 0, got -2\.$"),
    ("[1, NaN, 3]", r"the weight of class 'dog' must be a finite number above 0, got NaN\.$"),
    ("[1, 0, 3]", r"the weight of class 'dog' must be a finite number above 0, got 0\.$"),
    ("[1, true, 3]", r"the weight of class 'dog' must be a finite number above 0, got true\.$"),
    ('{"cat": [1], "dog": 1, "owl": 1}', r"^--class-weights '.*': the weight of class 'cat' must be a finite number above 0, got \[1\]\.$"),
    ("[1, 2", r"^--class-weights '.*' is not JSON \("),
    ('{"cat": 1, "dog": 1, "owl": 3, "cat": 5}', r"^--class-weights '.*' names class 'cat' twice; give each class once\.$"),
    ('"auto"', r"^--class-weights '.*' must hold a JSON list of weights in class order, or an object \{class name: weight\}"),
])
def test_a_bad_weights_file_is_one_usage_error(tmp_path, content, message):
    path = tmp_path / "w.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message) as caught:
        class_weights(str(path), LABELS, NAMES)
    assert "\n" not in str(caught.value)


def test_a_misspelt_auto_is_answered_with_it_and_a_folder_is_named(tmp_path):
    with pytest.raises(UsageError, match=r"'atuo' does not exist; .* Did you mean 'auto'\?$"):
        class_weights("atuo", LABELS, NAMES)
    with pytest.raises(UsageError, match=rf"^--class-weights '{tmp_path}' cannot be read: Is a directory\.$"):
        class_weights(str(tmp_path), LABELS, NAMES)


# --class-weights: the loss


def weighted_loss(class_weight: str, smoothing: float = 0.0):
    """The loss a run builds, for training labels LABELS."""
    from cnnkit.options import TrainConfig
    from cnnkit.recipe.build import _loss

    split = Split(torch.zeros(len(LABELS), 1, 2, 2, dtype=torch.uint8), LABELS)
    data = DataSplits(split, split, None, NAMES, "test")
    config = TrainConfig(class_weights=class_weight, label_smoothing=smoothing)
    return _loss(config, data, torch.device("cpu"), Progress(1, quiet=True), None)


def test_the_weighted_loss_is_the_weighted_mean_by_hand_and_torchs_own():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [0.0, 0.0, 2.0]])
    labels = torch.tensor([0, 2, 1, 2])
    w = [10 / 18, 10 / 9, 10 / 3]
    log_p = [[x - math.log(sum(math.exp(v) for v in row)) for x in row] for row in logits.tolist()]
    by_hand = sum(-w[y] * log_p[i][y] for i, y in enumerate(labels.tolist())) / sum(w[y] for y in labels.tolist())
    loss = weighted_loss("auto")
    assert loss(logits, labels).item() == pytest.approx(by_hand, rel=1e-6)
    assert loss(logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels, weight=torch.tensor(w)).item(), rel=1e-6)
    assert weighted_loss("none")(logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)

    eps = 0.1  # label smoothing: the smoothed part weighs every class by its weight, the mean divides by the labels' weights
    smoothed = sum((1 - eps) * -w[y] * log_p[i][y] + eps / 3 * sum(-w[c] * log_p[i][c] for c in range(3))
                   for i, y in enumerate(labels.tolist())) / sum(w[y] for y in labels.tolist())
    assert weighted_loss("auto", eps)(logits, labels).item() == pytest.approx(smoothed, rel=1e-6)

    mixed = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.2, 0.6]])  # mixup's soft targets
    soft = sum(-sum(w[c] * t[c] * log_p[i][c] for c in range(3)) for i, t in enumerate(mixed.tolist())) / 4
    assert loss(logits, mixed).item() == pytest.approx(soft, rel=1e-6)
    assert loss(logits, mixed).item() == pytest.approx(F.cross_entropy(logits, mixed, weight=torch.tensor(w)).item(), rel=1e-6)


# --sampler balanced


def test_balanced_draws_make_every_class_equally_likely_and_every_image_of_a_class_too():
    labels = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)[torch.randperm(1000, generator=torch.Generator().manual_seed(1))]
    generator = torch.Generator().manual_seed(0)
    drawn = torch.cat([balanced_draws(labels, generator) for _ in range(30)])  # 30 epochs of 1000 draws
    frequencies = torch.bincount(labels[drawn], minlength=3) / len(drawn)
    assert frequencies.tolist() == pytest.approx([1 / 3] * 3, abs=0.015), frequencies  # 5 standard deviations
    rare = torch.bincount(drawn[labels[drawn] == 2], minlength=1000)[labels == 2]
    assert len(rare) == 10 and rare.min() > 0.8 * 1000 and rare.max() < 1.2 * 1000, rare  # ~1000 each, sd ~30


def test_balanced_draws_follow_the_seed():
    labels = torch.tensor([0] * 50 + [1] * 5 + [3] * 20)  # class 2 has no images: never drawn
    first = balanced_draws(labels, torch.Generator().manual_seed(7))
    assert torch.equal(first, balanced_draws(labels, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, balanced_draws(labels, torch.Generator().manual_seed(8)))
    assert len(first) == 75 and set(labels[first].tolist()) == {0, 1, 3}


class Rank(SingleProcessStrategy):
    """Process ``rank`` of ``world_size`` as the trainer sees it, without a process group."""

    def __init__(self, rank: int, world_size: int):
        super().__init__(torch.device("cpu"))
        self.rank, self.world_size = rank, world_size

    def shard(self, count, global_batch, order=None):
        return shard_steps(count, global_batch, self.rank, self.world_size, order)


def trainer(strategy, loss_fn=None, sample_augment=None, sampler="balanced", batch_size=8):
    model = nn.Sequential(nn.Flatten(), nn.Linear(1, 3))
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn or nn.CrossEntropyLoss(), strategy=strategy,
                   precision=Precision("fp32", torch.device("cpu")), mean=[0.5], std=[0.5], batch_size=batch_size,
                   progress=Progress(1, quiet=True), shuffle_seed=3, augment_seed=4, num_classes=3,
                   sample_augment=sample_augment, sampler=sampler)


def numbered_split(labels: torch.Tensor) -> Split:
    """Image ``i`` holds ``i`` in its first pixel, so a batch tells which images it holds."""
    images = torch.zeros(len(labels), 1, 1, 1, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(len(labels), dtype=torch.uint8)
    return Split(images, labels)


def test_an_image_drawn_twice_in_an_epoch_is_augmented_with_two_seeds():
    labels = torch.tensor([0] * 40 + [1] * 2 + [2] * 8)
    seen: list[tuple[int, int]] = []

    def record(image, seed):
        seen.append((int(image[0, 0, 0]), seed))
        return image

    for _ in trainer(Rank(0, 1), sample_augment=record).batches(numbered_split(labels)):
        pass
    images = [image for image, _ in seen]
    assert len(seen) == 50 and len(set(images)) < 50, "drawn with replacement"
    assert len({seed for _, seed in seen}) == 50, "one seed per draw, not per image"
    assert images.count(40) + images.count(41) > 5, "the two images of class 1 are drawn about 50/3 times"


def test_every_process_draws_the_same_order_and_their_weighted_losses_average_to_the_global_batchs():
    labels = torch.tensor([0] * 30 + [1] * 3 + [2] * 7)
    split = numbered_split(labels)
    logits = torch.randn(len(labels), 3, generator=torch.Generator().manual_seed(0))
    loss_fn = nn.CrossEntropyLoss(weight=inverse_frequency(labels, NAMES), label_smoothing=0.1)
    single = [(images[:, 0, 0, 0].long(), share) for images, _, share in trainer(Rank(0, 1), loss_fn, batch_size=8).batches(split)]
    ranks = [list(trainer(Rank(rank, 2), loss_fn, batch_size=4).batches(split)) for rank in range(2)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 5
    for (whole, share), part0, part1 in zip(single, *ranks):
        assert share == 1.0
        assert torch.equal(torch.cat([part0[0][:, 0, 0, 0].long(), part1[0][:, 0, 0, 0].long()]), whole)
        averaged = sum(loss_fn(logits[images[:, 0, 0, 0].long()], batch_labels) * weight
                       for images, batch_labels, weight in (part0, part1)) / 2  # what DDP's gradient average sees
        assert averaged.item() == pytest.approx(loss_fn(logits[whole], labels[whole]).item(), rel=1e-6)


def test_a_weighted_validation_loss_is_the_weighted_mean_over_the_split_whatever_the_batch_size():
    labels = torch.tensor([0] * 30 + [1] * 3 + [2] * 7)
    split = numbered_split(labels)
    loss_fn = nn.CrossEntropyLoss(weight=inverse_frequency(labels, NAMES), label_smoothing=0.1)
    losses = []
    for batch_size in (3, 8, 40):
        torch.manual_seed(0)
        evaluator = trainer(Rank(0, 1), loss_fn, batch_size=batch_size)
        losses.append(evaluator.evaluate(split)["loss"])
    whole = loss_fn(evaluator.model(evaluator.inputs(split.images)), labels).item()  # one batch: F.cross_entropy(weight=w)
    assert losses == pytest.approx([whole] * 3, rel=1e-6)
    batch_means = [loss_fn(evaluator.model(evaluator.inputs(split.images[i:i + 3])), labels[i:i + 3]).item() * len(labels[i:i + 3])
                   for i in range(0, 40, 3)]
    assert sum(batch_means) / 40 != pytest.approx(whole, rel=1e-3), "averaging batch means by counts would differ"


def test_the_random_sampler_still_draws_a_permutation_with_a_seed_per_image():
    labels = torch.tensor([0] * 10 + [1] * 10)
    seen: list[tuple[int, int]] = []
    for _ in trainer(Rank(0, 1), sampler="random", sample_augment=lambda image, seed: seen.append((int(image[0, 0, 0]), seed))
                     or image).batches(numbered_split(labels)):
        pass
    assert sorted(image for image, _ in seen) == list(range(20))
    generator = torch.Generator().manual_seed(3)
    order = torch.randperm(20, generator=generator)
    seeds = torch.randint(0, 2**62, (20,), generator=torch.Generator().manual_seed(4))
    assert seen == [(int(i), int(seeds[i])) for i in order], "as before --sampler: image i's seed is the i-th drawn"


# runs


def history(run_dir: Path) -> list[dict[str, float]]:
    """Every epoch's metrics but the seconds it took."""
    return [{key: value for key, value in row.items() if key != "seconds"} for row in load_checkpoint(run_dir / "last.pt")["history"]]


@pytest.mark.slow
def test_a_resumed_balanced_weighted_run_ends_exactly_like_the_uninterrupted_one(run_cli, tmp_path, monkeypatch):
    common = ["--epochs", "2", "--augment", "random-shift,hflip", "--seed", "5", "--out", str(tmp_path), "--quiet", "--patience", "0"]
    options = [*common, "--sampler", "balanced", "--class-weights", "auto"]
    assert run_cli("train", *options, "--name", "whole").code == 0

    with monkeypatch.context() as patch:
        stop_after(patch, 1)
        assert run_cli("train", *options, "--name", "part").code == 130
    assert load_checkpoint(tmp_path / "part" / "last.pt")["epoch"] == 1
    resumed = run_cli("train", "--resume", str(tmp_path / "part"))
    assert resumed.code == 0, resumed.err
    assert history(tmp_path / "part") == history(tmp_path / "whole") and len(history(tmp_path / "whole")) == 2
    whole, part = (load_checkpoint(tmp_path / name / "last.pt")["state_dict"] for name in ("whole", "part"))
    assert all(torch.equal(whole[key], part[key]) for key in whole)
    assert run_cli("train", *common, "--name", "plain").code == 0  # the same seed without them: another run
    assert history(tmp_path / "plain")[0]["train_loss"] != history(tmp_path / "whole")[0]["train_loss"]


@pytest.mark.slow
def test_resume_refuses_a_weights_file_edited_since_the_run_started(run_cli, tmp_path, monkeypatch):
    weights = tmp_path / "w.json"
    weights.write_text(json.dumps([1.0] * 9 + [3.0]))

    with monkeypatch.context() as patch:
        stop_after(patch, 1)
        options = ("--epochs", "2", "--quiet", "--out", str(tmp_path), "--name", "w", "--class-weights", str(weights))
        assert run_cli("train", *options).code == 130
    last = (tmp_path / "w" / "last.pt").read_bytes()
    weights.write_text(json.dumps([1.0] * 9 + [5.0]))
    edited = run_cli("train", "--resume", str(tmp_path / "w"))
    assert edited.code == 2
    assert edited.err.strip().splitlines()[-1] == (
        f"Error: --class-weights {weights} now gives other weights (1, 1, 1, 1, 1, 1, 1, 1, 1, 5) than the run trained with "
        "(1, 1, 1, 1, 1, 1, 1, 1, 1, 3); put the file back as it was, or start a new run.")
    assert (tmp_path / "w" / "last.pt").read_bytes() == last, "nothing written"
    weights.write_text(json.dumps([1.0] * 9 + [3.0]))
    assert run_cli("train", "--resume", str(tmp_path / "w")).code == 0


@pytest.mark.slow
def test_two_ddp_processes_draw_and_weigh_as_one_process_with_twice_the_batch(run_cli, tmp_path):
    data = digits_folder(tmp_path / "data", [3, 8, 9], rare=8)
    common = ("--data", str(data), "--sampler", "balanced", "--class-weights", "auto", "--precision", "fp32", "--epochs", "1",
              "--quiet", "--out", str(tmp_path))
    ddp = run_cli("train", "--strategy", "ddp", "--nproc-per-node", "2", "--batch-size", "16", *common, "--name", "ddp")
    assert ddp.code == 0, ddp.err
    one = run_cli("train", "--strategy", "single", "--batch-size", "32", *common, "--name", "one")
    assert one.code == 0, one.err
    a, b = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "one" / "last.pt")
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], atol=1e-5, rtol=0)
    for column in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert a["history"][0][column] == pytest.approx(b["history"][0][column], abs=1e-5), column


@pytest.mark.slow
def test_cached_feature_fine_tuning_takes_class_weights_and_the_balanced_sampler(run_cli, tmp_path, monkeypatch):
    assert run_cli("train", "--epochs", "1", "--out", str(tmp_path), "--name", "digits", "--quiet").code == 0
    data = digits_folder(tmp_path / "data", [3, 8, 9], rare=8)
    args = ("--backbone", str(tmp_path / "digits"), "--data", str(data), "--epochs", "2", "--precision", "fp32",
            "--class-weights", "auto", "--sampler", "balanced", "--out", str(tmp_path), "--quiet")
    cached = run_cli("finetune", *args, "--name", "cached")
    assert cached.code == 0 and "computed once" in cached.err, cached.err
    monkeypatch.setattr("cnnkit.recipe.features.can_cache", lambda *args: "switched off by the test")
    full = run_cli("finetune", *args, "--name", "full")
    assert full.code == 0, full.err
    for a, b in zip(load_checkpoint(tmp_path / "cached" / "last.pt")["history"], load_checkpoint(tmp_path / "full" / "last.pt")["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4) and a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


@pytest.mark.slow
def test_class_weights_and_the_balanced_sampler_raise_the_rare_class_recall(run_cli, tmp_path):
    """Digits 3, 8 and 9 with 8 kept at a tenth of its training images (10 after the validation
    split, against ~100): the plain run hardly ever answers 8 on the 52 held-out 8s; weighted or
    balanced, the same seed finds most of them (measured: 0%, 98%, 79% with seed 0)."""
    data = digits_folder(tmp_path / "data", [3, 8, 9], rare=8)
    recalls = {}
    for name, extra in (("plain", ()), ("weighted", ("--class-weights", "auto")), ("balanced", ("--sampler", "balanced"))):
        trained = run_cli("train", "--data", str(data), "--epochs", "4", "--seed", "0", "--precision", "fp32", "--patience", "0",
                          *extra, "--out", str(tmp_path / "runs"), "--name", name, "--quiet")
        assert trained.code == 0, trained.err
        evaluated = run_cli("evaluate", str(tmp_path / "runs" / name), "--json")
        report = json.loads(evaluated.out)
        recalls[name] = next(row["recall"] for row in report["classes"] if row["name"] == "8")
        assert report == json.loads(Path(report["files"][0]).read_text()), "metrics.json holds what --json prints"
    assert recalls["weighted"] > recalls["plain"] + 0.3 and recalls["balanced"] > recalls["plain"] + 0.3, recalls


# data check and evaluate


def test_data_check_suggests_the_remedies_from_an_imbalance_of_3(run_cli, tmp_path, make_images):
    for root, rare in ((tmp_path / "three", 4), (tmp_path / "less", 5)):
        make_images(root / "train" / "common", 12, (30, 30, 30))
        make_images(root / "train" / "rare", rare, (220, 220, 220), seed=1)
        for name in ("common", "rare"):
            make_images(root / "val" / name, 2, (128, 128, 128), seed=2 + len(name))
    report = json.loads(run_cli("data", "check", str(tmp_path / "three"), "--json").out)
    assert report["imbalance"] == 3.0
    assert report["advice"] == ("unbalanced (3x): train with --class-weights auto (the loss weighs rare classes more) or "
                                "--sampler balanced (each class drawn equally often)")
    assert report["advice"] in run_cli("data", "check", str(tmp_path / "three")).out.splitlines()
    less = json.loads(run_cli("data", "check", str(tmp_path / "less"), "--json").out)
    assert less["imbalance"] == 2.4 and less["advice"] == ""
    assert "unbalanced" not in run_cli("data", "check", str(tmp_path / "less")).out


def test_balanced_accuracy_and_macro_f1_of_a_known_confusion_matrix():
    confusion = torch.tensor([  # rows: true class, columns: predicted
        [5, 1, 0, 0],
        [2, 2, 0, 0],
        [0, 3, 0, 0],   # never predicted right, never predicted at all
        [0, 0, 0, 0],   # no images, no predictions
    ])
    rows = per_class(confusion, ["a", "b", "c", "d"])
    recall = [5 / 6, 2 / 4, 0.0]  # class d has no images: left out of the balanced accuracy
    assert balanced_accuracy(rows) == pytest.approx(sum(recall) / 3)
    precision = [5 / 7, 2 / 6, 0.0, 0.0]
    f1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(precision, recall + [0.0])]
    assert f1[:2] == pytest.approx([2 * 5 / (2 * 5 + 2 + 1), 2 * 2 / (2 * 2 + 4 + 2)])  # 2TP / (2TP + FP + FN)
    assert macro_f1(rows) == pytest.approx(sum(f1[:3]) / 3), "c counts as 0 (it has images); d, neither seen nor predicted, is left out"
    perfect = per_class(torch.tensor([[3, 0, 0], [0, 2, 0], [0, 0, 0]]), ["a", "b", "c"])
    assert (balanced_accuracy(perfect), macro_f1(perfect)) == (1.0, 1.0), "a split lacking a class: a perfect score is 1"
    guessed = per_class(torch.tensor([[3, 0, 1], [0, 2, 0], [0, 0, 0]]), ["a", "b", "c"])
    assert macro_f1(guessed) == pytest.approx((2 * 0.75 / 1.75 + 1 + 0) / 3), "c was predicted (wrongly): it counts, as 0"

    metrics = pytest.importorskip("sklearn.metrics")
    truth = [t for t in range(4) for p in range(4) for _ in range(int(confusion[t, p]))]
    predicted = [p for t in range(4) for p in range(4) for _ in range(int(confusion[t, p]))]
    assert balanced_accuracy(rows) == pytest.approx(metrics.balanced_accuracy_score(truth, predicted))
    assert macro_f1(rows) == pytest.approx(metrics.f1_score(truth, predicted, average="macro", zero_division=0))
