"""``cnnkit train``: parse options (config file first, flags on top) and hand them to the engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from cnnkit.config import (
    PATH_OPTIONS,
    ConfigFile,
    TrainConfig,
    absolute_paths,
    load_config_file,
    missing_path_message,
    read_config_file,
)
from cnnkit.errors import UsageError
from cnnkit.options import checked

D = TrainConfig()
CONFIG_FILE = "cnnkit.config_file"
"""``ctx.meta`` key: the ``--config`` file read (:class:`cnnkit.config.ConfigFile`)."""


def _given(ctx: click.Context, name: str) -> bool:
    """Whether the user set option ``name`` (on the command line, or in a ``--config`` file)."""
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP)


IGNORED_BY = {"finetune": ("model", "model_kwargs")}
"""Options a command takes from a config file without using them (the backbone is the model)."""


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Options from the file become defaults, so any flag given on the command line wins. An
    option this command does not have (``freeze`` for ``train``) is refused, not ignored."""
    if value:
        config_file = load_config_file(value)
        options = config_file.options
        own = {p.name for p in ctx.command.params}
        defaults = vars(TrainConfig())  # a run's config.json lists every option, most at their defaults
        foreign = [k for k, v in options.items()
                   if k not in own and k not in IGNORED_BY.get(ctx.command.name, ()) and v != defaults.get(k)]
        if foreign:
            names = " and ".join(f"'{k}'" for k in foreign)
            verb = "applies" if len(foreign) == 1 else "apply"
            raise UsageError(f"{value}: option{'s' * (len(foreign) > 1)} {names} {verb} to 'cnnkit finetune', "
                             f"not 'cnnkit {ctx.command.name}'.")
        ctx.default_map = {**(ctx.default_map or {}), **{k: v for k, v in options.items() if k in own}}
        ctx.meta[CONFIG_FILE] = config_file
    return value


def _blame_config_file(ctx: click.Context, exc: UsageError) -> None:
    """Put the config file and key in front of ``exc``'s message, when a value the file set (and no flag
    overrode) is what the message is about: its flag or its value is named in it."""
    from cnnkit.engine.launch import launched_by_cnnkit

    if CONFIG_FILE not in ctx.meta or launched_by_cnnkit():  # a launched worker's file is cnnkit's own
        return
    path, options = ctx.meta[CONFIG_FILE].path, ctx.meta[CONFIG_FILE].options
    message = str(exc)
    defaults = {p.name: p.default for p in ctx.command.params}
    keys = [key for key, value in options.items()
            if ctx.get_parameter_source(key) == ParameterSource.DEFAULT_MAP and value != defaults.get(key)
            and _names(message, key, value)]
    if keys and not message.startswith(f"{path}:"):
        shown = " and ".join(f"'{key}'" for key in keys)
        exc.args = (f"{path}: option{'s' * (len(keys) > 1)} {shown}: {message}",)


def _names(message: str, key: str, value: Any) -> bool:
    flag = "--" + key.replace("_", "-")
    if re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", message):
        return True
    if key == "image_size" and _size_named(message, value):
        return True
    return isinstance(value, str) and bool(value) and (f"'{value}'" in message or repr(value) in message)


def _size_named(message: str, value: str) -> bool:
    """Whether ``message`` is about images of the size ``value`` asks for (``cannot take 4x4 images``)."""
    from cnnkit.values import parse_image_size

    try:
        size = parse_image_size(value)
    except UsageError:
        return False
    return size is not None and re.search(rf"(?<!\d){size[0]}x{size[1]} images", message) is not None


def _check_file_paths(ctx: click.Context, options: dict[str, Any]) -> None:
    """A path the config file holds relative to its folder, and no flag replaced, must be there:
    say so before anything starts, naming the file, the key and where the path leads."""
    config_file: ConfigFile | None = ctx.meta.get(CONFIG_FILE)
    if config_file is None:
        return
    for key in config_file.relative:
        if key in options and ctx.get_parameter_source(key) == ParameterSource.DEFAULT_MAP:
            message = missing_path_message(config_file, key, options[key])
            if message:
                raise UsageError(message)


def _unchanged_paths_dropped(run: str, given: dict[str, Any]) -> dict[str, Any]:
    """Paths given again on ``--resume`` that name what the run recorded (absolute, or relative to
    this folder) are not changes."""
    record = Path(run) / "config.json"
    try:
        saved = read_config_file(record) if record.is_file() else {}
    except UsageError:
        return given
    here = Path.cwd()

    def same(key: str) -> bool:
        return absolute_paths({key: given[key]}, here) == absolute_paths({key: saved[key]}, here)

    return {key: value for key, value in given.items() if not (key in PATH_OPTIONS and key in saved and same(key))}


@click.command()
@click.option("--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False, callback=_load_config,
              help="TOML or JSON file of options (e.g. a run's config.json); flags override it.")
@click.option("--model", type=checked("model"), default=D.model, show_default=True, help="Registered model name (see 'cnnkit models').")
@click.option("--model-kwargs", type=checked("model_kwargs"), default=D.model_kwargs,
              help="Model arguments, KEY=VALUE[,KEY=VALUE] (e.g. norm=batch,dropout=0.3 for alexnet-2012).")
@click.option("--data", type=checked("data"), default=D.data, show_default=True,
              help="Registered dataset (see 'cnnkit datasets') or a folder in ImageFolder layout.")
@click.option("--epochs", type=checked("epochs"), default=D.epochs, show_default=True)
@click.option("--batch-size", type=checked("batch_size"), default=D.batch_size, show_default=True)
@click.option("--lr", type=checked("lr"), default=D.lr, show_default=True,
              help="Learning rate (the peak rate for onecycle).")
@click.option("--optimizer", type=checked("optimizer"), default=D.optimizer, show_default=True, help="sgd, adam or adamw.")
@click.option("--weight-decay", type=checked("weight_decay"), default=D.weight_decay, show_default=True)
@click.option("--momentum", type=checked("momentum"), default=D.momentum, show_default=True,
              help="SGD momentum.")
@click.option("--nesterov/--no-nesterov", default=D.nesterov, show_default=True, help="Nesterov momentum (SGD).")
@click.option("--scheduler", type=checked("scheduler"), default=D.scheduler, show_default=True, help="none, step, cosine or onecycle.")
@click.option("--step-size", type=checked("step_size"), default=D.step_size, show_default=True,
              help="Epochs between learning-rate drops (step scheduler).")
@click.option("--gamma", type=checked("gamma"), default=D.gamma, show_default=True,
              help="Learning-rate factor at each drop (step scheduler).")
@click.option("--label-smoothing", type=checked("label_smoothing"), default=D.label_smoothing,
              show_default=True)
@click.option("--patience", type=checked("patience"), default=D.patience, show_default=True,
              help="Stop after this many epochs without a lower validation loss (0: never).")
@click.option("--val-split", type=checked("val_split"), default=D.val_split,
              show_default=True, help="Fraction held out for validation when the data has no val/ folder.")
@click.option("--image-size", type=checked("image_size"), default=D.image_size, metavar="N|HxW",
              help="Input size N or HxW; default: the model's own (data is resized to it, with a note).")
@click.option("--data-dir", type=checked("data_dir"), default=D.data_dir,
              help="Where datasets known by name (mnist, cifar10, ...) keep their files; default: $CNNKIT_DATA, "
              "else ~/.cache/cnnkit/data.")
@click.option("--data-in-memory", type=checked("data_in_memory"), default=D.data_in_memory, show_default=True,
              help="yes: decode all images into memory (on the training device); no: stream them from disk "
              "batch by batch; auto: in memory while they fit --memory-budget.")
@click.option("--memory-budget", type=checked("memory_budget"), default=D.memory_budget, show_default=True,
              help="GiB of decoded images that --data-in-memory auto keeps in memory.")
@click.option("--workers", type=checked("workers"), default=D.workers,
              help="DataLoader processes that decode streamed images; default: none on 2 cores or fewer, "
              "else one per spare core (up to 8).")
@click.option("--augment", type=checked("augment"), default=D.augment,
              help="Augmentations and presets, comma-separated, with arguments as in Python, e.g. "
              "\"random-crop(padding=4), hflip, mixup(alpha=0.2)\" or cifar (see 'cnnkit augmentations').")
@click.option("--mix-prob", type=checked("mix_prob"), default=D.mix_prob, show_default=True,
              help="Chance a batch is mixed when --augment has mixup or cutmix (with both, one is drawn per batch).")
@click.option("--init", type=checked("init"), default=D.init, help="Weight initializer (see 'cnnkit initializers'); default: PyTorch's.")
@click.option("--init-bias", type=checked("init_bias"), default=D.init_bias,
              help="Fill every conv and linear bias with this value (after --init); default: leave them.")
@click.option("--strategy", type=checked("strategy"), default=D.strategy, show_default=True,
              help="Parallel strategy: auto, single, dp, ddp (see 'cnnkit strategies').")
@click.option("--nproc-per-node", type=checked("nproc_per_node"), default=D.nproc_per_node,
              help="ddp: processes on this node; default one per GPU, or 1 on CPU.")
@click.option("--nnodes", type=checked("nnodes"), default=D.nnodes, show_default=True, help="ddp: number of machines.")
@click.option("--node-rank", type=checked("node_rank"), default=D.node_rank,
              help="ddp: this machine's rank (static rendezvous); default: assigned by rendezvous.")
@click.option("--rdzv-endpoint", type=checked("rdzv_endpoint"), default=D.rdzv_endpoint, help="ddp: HOST:PORT every node meets at (multi-node).")
@click.option("--rdzv-timeout", type=checked("rdzv_timeout"), default=D.rdzv_timeout, show_default=True,
              help="ddp: seconds to wait for every node to join the rendezvous (multi-node).")
@click.option("--sync-bn", is_flag=True, default=D.sync_bn, help="ddp: synchronise batch-norm statistics across GPUs.")
@click.option("--precision", type=checked("precision"), default=D.precision, show_default=True,
              help="auto, fp32, bf16 or fp16 (autocast); auto: bf16 where native, fp16 on older GPUs, else fp32.")
@click.option("--channels-last/--no-channels-last", default=D.channels_last,
              help="NHWC memory layout; default: on with bf16/fp16, where it is faster.")
@click.option("--compile", is_flag=True, default=D.compile, help="torch.compile the model (slow to start; off by default).")
@click.option("--deterministic/--no-deterministic", default=D.deterministic,
              help="Deterministic kernels; default: on, except on CUDA (cudnn.benchmark instead).")
@click.option("--seed", type=checked("seed"), default=D.seed, show_default=True,
              help="Seed for all randomness (0 to 2**64-1).")
@click.option("--device", type=checked("device"), default=D.device, show_default=True, help="auto (cuda, then mps, then cpu), cpu, cuda[:N] or mps.")
@click.option("--name", type=checked("name"), default=D.name, help="Run name; default: a timestamp.")
@click.option("--out", type=checked("out"), default=D.out, show_default=True,
              help="Folder that holds run directories.")
@click.option("--quiet", is_flag=True, default=D.quiet, help="Print only the final summary line.")
@click.option("--resume", type=checked("resume"), default=D.resume,
              help="Continue the run in this directory from its last finished epoch.")
@click.pass_context
def train(ctx: click.Context, **options) -> None:
    """Train a model on a dataset and write a run directory.

    With no options it trains mnist-cnn on the handwritten digits cnnkit ships.
    """
    try:
        result = _run(ctx, options)
    except UsageError as exc:
        _blame_config_file(ctx, exc)
        raise
    if result is None:
        return
    best = f"best epoch {result.best_epoch}: val loss {result.best['val_loss']:.4f}, val acc {100 * result.best['val_acc']:.2f}%"
    if result.test is not None:
        scored = f"test acc {100 * result.test['acc']:.2f}%"
    else:
        scored = "no test split"
    skipped = f"; {len(result.skipped)} unreadable file(s) skipped" if result.skipped else ""
    click.echo(f"{best}, {scored}{skipped}; run: {result.run_dir}")


def _run(ctx: click.Context, options: dict[str, Any]):
    from cnnkit.engine.run import train as run_training

    _check_file_paths(ctx, options)
    if options["resume"]:
        from cnnkit.engine.resume import resume_config

        given = {name: value for name, value in options.items() if _given(ctx, name)}
        config = resume_config(options["resume"], _unchanged_paths_dropped(options["resume"], given))
    else:
        config = TrainConfig(**options)
    return run_training(config)
