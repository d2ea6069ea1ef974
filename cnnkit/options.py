"""The training options, each declared once.

Every field of :class:`TrainConfig` is one option: its default, its :class:`~cnnkit.rules.Rule`,
its help, its help section, and what it means for resume, for one process and for each command.
Everything else is derived from this table: the click flags of ``cnnkit train``, ``cnnkit
finetune`` and ``cnnkit summary`` (:mod:`cnnkit.cli.flags`), config files (:mod:`cnnkit.config`),
validation (:meth:`TrainConfig.__post_init__`) and the resume rules (:data:`RESUME_MUST_MATCH`).
A new option is one field here plus its use.

The same names are used by flags (``batch_size`` <-> ``--batch-size``), config files and the
``config.json`` each run writes, so a run can be repeated with ``cnnkit train --config
runs/NAME/config.json``. ``config.json`` records absolute paths (:meth:`TrainConfig.to_dict`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from cnnkit.errors import UsageError
from cnnkit.rules import Checked, Rule
from cnnkit.values import absolute_uri, is_weights_file, parse_freeze

SEED_MAX = 2**64 - 1
RDZV_TIMEOUT_MAX = 86_400
"""The longest rendezvous wait, in seconds: a day (nodes started further apart are not one job).
torch keeps the timeout in a C integer, which numbers far larger overflow with a raw error."""
BATCH_MAX = 2**31 - 1
"""The largest batch: 32-bit indexing bounds what one kernel call can address, and no dataset
cnnkit reads is larger."""

TEXT = Rule(str)
NAME = Rule(str, nonempty=True)
FLAG = Rule(bool)
MAYBE_FLAG = Rule(bool, nullable=True)

CLASS_WEIGHT_NAMES = ("auto", "none")
"""What --class-weights takes besides a file."""

SECTIONS = ("Model", "Transfer", "Data", "Optimization", "Augmentation", "Parallel", "Hardware", "Run")
"""The help's sections, in the order ``--help`` shows them."""


SAME_AS_TRAIN: Any = type("SameAsTrain", (), {"__repr__": lambda self: "SAME_AS_TRAIN"})()
"""An option's ``finetune`` default when ``cnnkit finetune`` keeps ``cnnkit train``'s."""


@dataclass(frozen=True)
class Option:
    """What the table says about one option besides its name, type and default."""

    rule: Rule
    help: str
    section: str
    flag: str = ""
    """The flag as click spells it when it is not ``--NAME``: ``--a/--no-a`` (on and off) or
    ``--a`` (an on-only flag, for a boolean)."""
    trajectory: bool = False
    """Shapes the training trajectory: a resumed run must keep it."""
    only: str = ""
    """``ddp``: applies to distributed runs only; ``finetune``: to fine-tuning only; ``train``:
    not an option of ``cnnkit finetune`` (the backbone is the model)."""
    finetune: Any = SAME_AS_TRAIN
    """Its default under ``cnnkit finetune`` (the transfer recipe's), when not the same."""
    path: str = ""
    """``always``: a path; ``or-name``: a path unless it is a registered name (:func:`absolute_paths`)."""
    reads: bool = False
    """A path to something that must already exist (not made when missing)."""
    metavar: str | None = None
    show_default: bool | str = True


T = TypeVar("T")


def option(default: T, rule: Rule, help: str, section: str, **details: Any) -> T:
    """A :class:`TrainConfig` field declaring one option (see :class:`Option` for ``details``)."""
    return field(default=default, metadata={"option": Option(rule, help, section, **details)})


@dataclass(frozen=True)
class TrainConfig:
    model: str = option("mnist-cnn", NAME, "Registered model name (see 'cnnkit models').", "Model",
                        trajectory=True, only="train")
    model_kwargs: str = option(
        "", Rule(str, list_joins=True),
        "Model arguments, KEY=VALUE[,KEY=VALUE] (e.g. norm=batch,dropout=0.3 for alexnet-2012).", "Model",
        trajectory=True, only="train", show_default=False)
    backbone: str = option(
        "", TEXT, "A torchvision model (resnet18, vgg16, ...), a timm model (timm/resnet18.a1_in1k), or a cnnkit "
        "checkpoint or run directory.", "Transfer", trajectory=True, only="finetune", path="or-name", reads=True,
        show_default=False)
    weights: str = option(
        "", TEXT, "Pretrained weights: a torchvision name (DEFAULT, IMAGENET1K_V1, ...) or a .pth/.safetensors file; "
        "default: the model's default pretrained weights.", "Transfer",
        trajectory=True, only="finetune", path="or-name", reads=True, show_default=False)
    pretrained: bool = option(
        True, FLAG, "--no-pretrained: the same network from a random initialisation (the from-scratch baseline; "
        "everything trains: --freeze none).", "Transfer", flag="--pretrained/--no-pretrained", trajectory=True,
        only="finetune")
    freeze: str = option(
        "", TEXT, "features (train only the new head), none (fine-tune everything), N (freeze the first N stages) "
        "or auto (the four-quadrant rule: by the data's size and similarity; it prints its decision); default: "
        "features, or none with --no-pretrained.", "Transfer", trajectory=True, only="finetune", show_default=False)
    unfreeze_at: int = option(
        0, Rule(int, min=0), "From this epoch on, train the whole network (at --backbone-lr-mult, default 0.1, of "
        "the rate).", "Transfer", trajectory=True, only="finetune", show_default=False)
    backbone_lr_mult: float | None = option(
        None, Rule(float, min=0, nullable=True),
        "Learning-rate factor (above 0) for the backbone's trainable parameters (discriminative rates); default 0.1 "
        "with --unfreeze-at or when --freeze auto fine-tunes large similar data, else 1.", "Transfer",
        trajectory=True, only="finetune")
    similar: bool | None = option(
        None, MAYBE_FLAG, "For --freeze auto: say whether the data resembles the pretraining data (default: a "
        "linear probe decides).", "Transfer", flag="--similar/--different", trajectory=True, only="finetune")
    data: str = option("digits", NAME, "Registered dataset (see 'cnnkit datasets') or a folder in ImageFolder layout.",
                       "Data", trajectory=True, path="or-name", reads=True)
    epochs: int = option(20, Rule(int, min=1), "", "Optimization", finetune=10)
    batch_size: int = option(64, Rule(int, min=1, max=BATCH_MAX), "", "Optimization", trajectory=True)
    lr: float = option(2e-3, Rule(float, min=0, min_open=True), "Learning rate (the peak rate for onecycle).",
                       "Optimization", trajectory=True, finetune=1e-3)
    optimizer: str = option("adamw", NAME, "sgd, adam or adamw.", "Optimization", trajectory=True, finetune="sgd")
    weight_decay: float = option(0.05, Rule(float, min=0), "", "Optimization", trajectory=True, finetune=0.0)
    momentum: float = option(0.9, Rule(float, min=0, max=1), "SGD momentum.", "Optimization", trajectory=True)
    nesterov: bool = option(False, FLAG, "Nesterov momentum (SGD).", "Optimization", flag="--nesterov/--no-nesterov",
                            trajectory=True)
    scheduler: str = option("cosine", NAME, "none, step, cosine or onecycle.", "Optimization", trajectory=True,
                            finetune="step")
    step_size: int = option(10, Rule(int, min=1), "Epochs between learning-rate drops (step scheduler).",
                            "Optimization", trajectory=True, finetune=7)
    gamma: float = option(0.1, Rule(float, min=0, min_open=True), "Learning-rate factor at each drop (step scheduler).",
                          "Optimization", trajectory=True)
    label_smoothing: float = option(0.1, Rule(float, min=0, max=1, max_open=True), "", "Optimization",
                                    trajectory=True, finetune=0.0)
    class_weights: str = option(
        "none", NAME, "Per-class weights in the loss: auto (inverse class frequency, as scikit-learn's 'balanced'), "
        "none, or a JSON file of one weight per class (a list in class order, or an object by class name). "
        "Validation and test losses are weighted too (the weighted mean over each split).",
        "Optimization", trajectory=True, path="or-name", reads=True, metavar="auto|none|FILE")
    patience: int = option(5, Rule(int, min=0), "Stop after this many epochs without a lower validation loss (0: never).",
                           "Optimization")
    val_split: float = option(0.2, Rule(float, min=0, max=1, max_open=True),
                              "Fraction held out for validation when the data has no val/ folder.", "Data", trajectory=True)
    image_size: str = option("", Rule(str, whole_as_text=True),
                             "Input size N or HxW; default: the model's own (data is resized to it, with a note).", "Data",
                             trajectory=True, metavar="N|HxW", show_default=False)
    data_dir: str = option(
        "", TEXT, "Where datasets known by name (mnist, cifar10, ...) keep their files; default: $CNNKIT_DATA, else "
        "~/.cache/cnnkit/data.", "Data", path="always", show_default=False)
    sampler: str = option(
        "random", Rule(str, choices=("random", "balanced")), "random: each training image once per epoch, shuffled; "
        "balanced: as many draws per epoch, each class equally likely (with replacement).", "Data", trajectory=True,
        metavar="random|balanced")
    data_in_memory: str = option(
        "auto", Rule(str, choices=("auto", "yes", "no")), "yes: decode all images into memory (on the training "
        "device); no: stream them from disk batch by batch; auto: in memory while they fit --memory-budget.", "Data")
    memory_budget: float = option(2.0, Rule(float, min=0), "GiB of decoded images that --data-in-memory auto keeps in memory.",
                                  "Data")
    workers: int | None = option(
        None, Rule(int, min=0, nullable=True), "DataLoader processes that decode streamed images; default: none on 2 "
        "cores or fewer, else one per spare core (up to 8).", "Data")
    augment: str = option(
        "", Rule(str, list_joins=True), "Augmentations and presets, comma-separated, with arguments as in Python, e.g. "
        "\"random-crop(padding=4), hflip, mixup(alpha=0.2)\" or cifar (see 'cnnkit augmentations').", "Augmentation",
        trajectory=True, show_default=False)
    mix_prob: float = option(1.0, Rule(float, min=0, max=1), "Chance a batch is mixed when --augment has mixup or cutmix "
                             "(with both, one is drawn per batch).", "Augmentation", trajectory=True)
    init: str = option("", TEXT, "Weight initializer (see 'cnnkit initializers'); default: PyTorch's.", "Model",
                       trajectory=True, show_default=False)
    init_bias: float | None = option(None, Rule(float, nullable=True), "Fill every conv and linear bias with this value "
                                     "(after --init); default: leave them.", "Model", trajectory=True)
    strategy: str = option("auto", NAME, "Parallel strategy: auto, single, dp, ddp (see 'cnnkit strategies').", "Parallel",
                           trajectory=True)
    nproc_per_node: int = option(0, Rule(int, min=0), "ddp: processes on this node; default one per GPU, or 1 on CPU.",
                                 "Parallel", trajectory=True, only="ddp", show_default=False)
    nnodes: int = option(1, Rule(int, min=1), "ddp: number of machines.", "Parallel", trajectory=True, only="ddp")
    node_rank: int = option(-1, Rule(int, min=-1), "ddp: this machine's rank (static rendezvous); default: assigned by "
                            "rendezvous.", "Parallel", only="ddp", show_default=False)
    rdzv_endpoint: str = option("", TEXT, "ddp: HOST:PORT every node meets at (multi-node).", "Parallel", only="ddp",
                                show_default=False)
    rdzv_timeout: int = option(300, Rule(int, min=1, max=RDZV_TIMEOUT_MAX), "ddp: seconds to wait for every node to join "
                               "the rendezvous (multi-node).", "Parallel", only="ddp")
    sync_bn: bool = option(False, FLAG, "ddp: synchronise batch-norm statistics across GPUs.", "Parallel", flag="--sync-bn",
                           trajectory=True, only="ddp", show_default=False)
    precision: str = option("auto", NAME, "auto, fp32, bf16 or fp16 (autocast); auto: bf16 where native, fp16 on older "
                            "GPUs, else fp32.", "Hardware", trajectory=True)
    channels_last: bool | None = option(None, MAYBE_FLAG, "NHWC memory layout; default: on with bf16/fp16, where it is "
                                        "faster.", "Hardware", flag="--channels-last/--no-channels-last", trajectory=True)
    compile: bool = option(False, FLAG, "torch.compile the model (slow to start; off by default).", "Hardware",
                           flag="--compile", show_default=False)
    deterministic: bool | None = option(None, MAYBE_FLAG, "Deterministic kernels; default: on, except on CUDA "
                                        "(cudnn.benchmark instead).", "Hardware", flag="--deterministic/--no-deterministic")
    seed: int = option(0, Rule(int, min=0, max=SEED_MAX), "Seed for all randomness (0 to 2**64-1).", "Run", trajectory=True)
    device: str = option("auto", NAME, "auto (cuda, then mps, then cpu), cpu, cuda[:N] or mps.", "Hardware")
    name: str = option("", TEXT, "Run name; default: a timestamp.", "Run", show_default=False)
    out: str = option("runs", NAME, "Folder that holds run directories.", "Run", path="always")
    log: str = option(
        "", Rule(str, list_joins=True), "Callbacks that log the run, comma-separated: tensorboard, mlflow, or a "
        "plugin's (see 'cnnkit callbacks'), or none; metrics.csv is always written.", "Run", metavar="NAME[,NAME]",
        show_default=False)
    log_uri: str = option(
        "", TEXT, "Where trackers log: MLflow's tracking URI (e.g. sqlite:///mlflow.db); default: "
        "$MLFLOW_TRACKING_URI, else MLflow's own default. TensorBoard always writes into the run directory. "
        "config.json and the checkpoints record it: give passwords through the tracker's environment variables.",
        "Run", metavar="URI", show_default=False)
    quiet: bool = option(False, FLAG, "Print only the final summary line.", "Run", flag="--quiet", show_default=False)
    resume: str = option("", TEXT, "Continue the run in this directory from its last finished epoch.", "Run",
                         path="always", reads=True, show_default=False)

    def __post_init__(self) -> None:
        """Every way of making options (flags, files, ``--resume``, the Python API) ends here."""
        for name, declared in OPTIONS.items():
            try:
                object.__setattr__(self, name, declared.rule.check(getattr(self, name)))
            except ValueError as exc:
                raise UsageError(f"Option '{name}' {exc}.") from None

    def to_dict(self) -> dict[str, Any]:
        """The options as ``config.json`` records them: relative paths made absolute, so the record
        holds wherever it is read from."""
        options = absolute_paths(asdict(self), Path.cwd())
        if self.backbone:  # what froze, as the flag spells it: "" is features, or none with --no-pretrained
            options["freeze"] = str(parse_freeze(self.freeze, pretrained=self.pretrained))
        return options


OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in fields(TrainConfig)}
FIELD_NAMES = list(OPTIONS)
DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainConfig)}

RESUME_MUST_MATCH = tuple(name for name, declared in OPTIONS.items() if declared.trajectory)
"""Options that shape the training trajectory: a resumed run must keep them, or it would not end
where the uninterrupted run would. The others (epochs, patience, device, ...) may change."""
DISTRIBUTED_ONLY = tuple(name for name, declared in OPTIONS.items() if declared.only == "ddp")
TRANSFER_ONLY = tuple(name for name, declared in OPTIONS.items() if declared.only == "finetune")
PATH_OPTIONS = tuple(name for name, declared in OPTIONS.items() if declared.path)
"""Options that hold a path (``or-name`` ones only when they are not a name)."""
MUST_EXIST = tuple(name for name, declared in OPTIONS.items() if declared.reads)
"""Path options that name something to read (the others are made when missing)."""


def checked(name: str) -> Checked:
    """The click type of option ``name``: its rule, applied to the flag's text."""
    return Checked(OPTIONS[name].rule)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def flag_as_given(name: str, value: Any) -> str:
    """Option ``name``'s flag as a user sets ``value`` with it (``--no-pretrained``, ``--different``)."""
    on, _, off = OPTIONS[name].flag.partition("/")
    if off and isinstance(value, bool):
        return on if value else off
    return flag_name(name)


def flags_set(config: TrainConfig, names: tuple[str, ...]) -> list[str]:
    """The flags of the options among ``names`` that ``config`` sets away from their defaults."""
    return [flag_as_given(name, getattr(config, name)) for name in names if getattr(config, name) != DEFAULTS[name]]


def absolute_paths(options: dict[str, Any], base: Path) -> dict[str, Any]:
    """``options`` with each relative path made absolute against ``base``; names stay names."""
    base = Path(os.path.abspath(base))
    resolved = dict(options)
    for name in PATH_OPTIONS:
        value = options.get(name)
        if isinstance(value, str) and value and _is_path(name, value, base):
            resolved[name] = os.path.abspath(base / Path(value).expanduser())
    if isinstance(options.get("log_uri"), str):
        resolved["log_uri"] = absolute_uri(options["log_uri"], str(base))
    return resolved


def spelled_as_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.startswith((".", "~"))


def _is_path(name: str, value: str, base: Path) -> bool:
    """Whether ``value`` of option ``name`` is a path: ``data`` unless it is a registered dataset's
    name, ``backbone`` unless it is a registered model's (and then only when it is spelled as a
    path, is a ``.pt`` file or exists under ``base``), ``weights`` when it is a file."""
    if OPTIONS[name].path == "always" or value.startswith((".", "~")):
        return True
    if name == "weights":
        return is_weights_file(value)
    if name == "class_weights":
        return value not in CLASS_WEIGHT_NAMES
    from cnnkit.plugins import registry

    if name == "data":
        return value not in registry("datasets")
    if value in registry("models"):
        return False
    return spelled_as_path(value) or value.endswith(".pt") or (base / value).exists()
