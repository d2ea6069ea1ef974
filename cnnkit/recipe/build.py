"""Building a planned run's parts, in the order that makes runs repeatable: determinism and seeds
first, then the data, the model (a registered one, or a pretrained backbone with its new head),
its initialisation, the feature cache decision, and last the trainer for what really runs.

:func:`build_parts` returns them as one frozen :class:`~cnnkit.recipe.parts.RunParts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from cnnkit.console import warn
from cnnkit.engine.balance import class_weights, describe_weights
from cnnkit.engine.optim import ONECYCLE_MIN_STEPS, build_optimizer, build_scheduler, param_groups
from cnnkit.engine.precision import Precision, resolve_channels_last, resolve_precision
from cnnkit.engine.progress import Progress
from cnnkit.engine.seeding import configure_determinism, derive_seed, resolve_deterministic, seed_everything
from cnnkit.engine.trainer import Trainer
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.models.check import build_model, checked_input_size
from cnnkit.models.init import first_batch, initialize, needs_batch
from cnnkit.options import TrainConfig
from cnnkit.recipe.data_setup import DataSetup, set_up_data
from cnnkit.recipe.features import CachedFeatures, cache_features
from cnnkit.recipe.parts import RunParts
from cnnkit.recipe.plan import Plan
from cnnkit.recipe.state import load_weights
from cnnkit.registry import Entry, guarded
from cnnkit.transfer.features import ImageReader

if TYPE_CHECKING:
    from cnnkit.contracts._models import Pretrained
    from cnnkit.contracts._strategies import Strategy
    from cnnkit.data.splits import DataSplits
    from cnnkit.transfer.setup import Transfer


@dataclass(frozen=True)
class Network:
    """The model before the strategy wraps it, and what rebuilds it by name."""

    model: nn.Module
    transfer: Transfer | None
    name: str
    kwargs: dict[str, Any]


def build_parts(config: TrainConfig, plan: Plan, strategy: Strategy, *, bars: bool | None = None,
                saved: dict[str, Any] | None = None) -> RunParts:
    """The parts of the run ``plan`` describes, in this process (``saved``: a resumed run's
    ``last.pt``, whose decisions and weights a fine-tuning run takes)."""
    device = strategy.device
    deterministic = resolve_deterministic(config.deterministic, device)
    configure_determinism(deterministic, device)
    precision = Precision(resolve_precision(config.precision, device), device)
    channels_last = resolve_channels_last(config.channels_last, precision.name, device)
    seed_everything(config.seed)
    progress = Progress(config.epochs, quiet=config.quiet or not strategy.is_main, bars=bars)
    pretrained = _pretrained(plan, config, saved) if config.backbone else None
    native = pretrained.preprocessing.input_size if pretrained is not None else checked_input_size(_registered(plan))
    inputs = set_up_data(config, plan, strategy, native, pretrained.preprocessing if pretrained is not None else None)
    loss_fn = _loss(config, inputs.data, device, progress, saved)  # a bad --class-weights file is refused before the model is built
    network = _network(config, plan, inputs, pretrained, saved, progress)
    _initialize(config, plan, network, inputs, device, channels_last)
    model = network.model.to(memory_format=torch.channels_last) if channels_last else network.model
    wrapped = strategy.wrap(model)
    torch.manual_seed(derive_seed(config.seed, "torch", strategy.rank))  # dropout differs per process
    cached = _cached(config, plan, strategy, network, wrapped, inputs, precision, channels_last)
    if cached is not None:  # only the tail runs, on the stored features (a feature vector has no channels-last layout)
        data, runs, layout_channels_last = cached.data, cached.tail, False
    else:
        data, runs, layout_channels_last = inputs.data, _compiled(wrapped) if config.compile else wrapped, channels_last
    trainer = _trainer(config, strategy, network, wrapped, runs, data, inputs, precision, progress, layout_channels_last, loss_fn)
    return RunParts(
        config=config, strategy=strategy, data=data, model=wrapped, trainer=trainer, transfer=network.transfer,
        precision=precision, channels_last=channels_last, deterministic=deterministic, progress=progress,
        input_size=inputs.input_size, mean=inputs.mean, std=inputs.std, eval_crop=inputs.eval_crop,
        interpolation=inputs.interpolation, model_name=network.name, model_kwargs=network.kwargs, workers=inputs.workers,
    )


def _compiled(model: nn.Module) -> nn.Module:
    return cast(nn.Module, torch.compile(model))  # an OptimizedModule (a Module); torch's stubs only promise a callable


def _registered(plan: Plan) -> Entry:
    """The registered model a run without ``--backbone`` trains (the plan always names one then)."""
    if plan.model is None:
        raise CnnkitError("a run without --backbone needs a registered model")
    return plan.model


def _pretrained(plan: Plan, config: TrainConfig, saved: dict[str, Any] | None) -> Pretrained:
    from cnnkit.transfer.setup import load_pretrained

    return load_pretrained(plan.model, config, saved)


def _network(config: TrainConfig, plan: Plan, inputs: DataSetup, pretrained: Pretrained | None, saved: dict[str, Any] | None,
             progress: Progress) -> Network:
    """The model a registered entry builds for the data, or the pretrained backbone with its new
    head, frozen as the plan says (a resumed run: as ``last.pt`` records, with its weights)."""
    classes = len(inputs.data.classes)
    if pretrained is None:
        kwargs = {"num_classes": classes, "in_channels": inputs.input_size[0], **plan.model_kwargs}
        return Network(build_model(_registered(plan), kwargs, inputs.input_size), None, config.model, kwargs)
    from cnnkit.transfer.setup import Transfer

    transfer = Transfer.build(pretrained, classes, config, inputs.fixed_size, inputs.input_size, saved, freeze=plan.freeze)
    if saved is not None:
        load_weights(transfer.model, saved, Path(config.resume) / "last.pt")
    progress.message(f"Fine-tuning {transfer.describe()}")
    return Network(transfer.model, transfer, transfer.model_name, {**transfer.model_kwargs, "num_classes": classes})


def _initialize(config: TrainConfig, plan: Plan, network: Network, inputs: DataSetup, device: torch.device, channels_last: bool) -> None:
    """``--init`` and ``--init-bias``, on the new head only when fine-tuning (never over pretrained
    weights). An initializer that measures a batch is skipped on resume: last.pt holds the weights."""
    target = network.transfer.head_module() if network.transfer is not None else network.model
    initializer = plan.initializer
    if initializer is not None and not (config.resume and needs_batch(initializer)):
        batch = first_batch(
            inputs.fixed_size.train, batch_size=config.batch_size, shuffle_seed=derive_seed(config.seed, "shuffle"), device=device,
            mean=list(inputs.mean), std=list(inputs.std), channels_last=channels_last, workers=inputs.workers,
        ) if needs_batch(initializer) else None  # every process the same batch: the same weights
        guarded(initializer, lambda: initialize(initializer, target, batch))
    if config.init_bias is not None:
        from cnnkit.models.init import fill_biases

        fill_biases(target, config.init_bias)


def _cached(config: TrainConfig, plan: Plan, strategy: Strategy, network: Network, wrapped: nn.Module, inputs: DataSetup,
            precision: Precision, channels_last: bool) -> CachedFeatures | None:
    """A fine-tuning run's features, when it trains only the head on a frozen backbone (see
    :mod:`cnnkit.recipe.features`)."""
    if network.transfer is None:
        return None
    reader = ImageReader(batch_size=config.batch_size, device=strategy.device, workers=inputs.workers, precision=precision,
                         mean=inputs.mean, std=inputs.std, channels_last=channels_last)
    return cache_features(network.transfer, wrapped, inputs.data, reader, augment=plan.augment, strategy=strategy,
                          compiled=config.compile, input_size=inputs.input_size)


def _loss(config: TrainConfig, data: DataSplits, device: torch.device, progress: Progress,
          saved: dict[str, Any] | None) -> nn.Module:
    """Cross-entropy with the run's label smoothing and ``--class-weights`` (from the training
    split's labels, on the training device); evaluation uses the same loss, so the validation and
    test losses are weighted too, as in torchvision's and timm's recipes. A resumed run refuses
    weights other than those its ``last.pt`` trained with (a weights file edited meanwhile)."""
    weights = class_weights(config.class_weights, data.train.labels, list(data.classes))
    if saved is not None:
        check_same_weights(saved.get("class_weights"), weights, config)
    if weights is not None:
        progress.message(describe_weights(weights, list(data.classes), config.class_weights))
        weights = weights.to(device)
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)


def check_same_weights(trained: list[float] | None, weights: torch.Tensor | None, config: TrainConfig) -> None:
    """Refuse to resume with class weights that differ from those the run trained with
    (``trained``, from ``last.pt``; checkpoints from before class weights hold none: not checked)."""
    if trained is None:
        return
    if weights is None or len(trained) != len(weights) or not torch.allclose(torch.tensor(trained), weights.float(), rtol=0, atol=1e-6):
        now = "none" if weights is None else ", ".join(f"{w:.4g}" for w in weights.tolist())
        then = ", ".join(f"{w:.4g}" for w in trained)
        raise UsageError(f"--class-weights {config.class_weights} now gives other weights ({now}) than the run trained "
                         f"with ({then}); put the file back as it was, or start a new run.")


def _trainer(config: TrainConfig, strategy: Strategy, network: Network, wrapped: nn.Module, runs: nn.Module, data: DataSplits,
             inputs: DataSetup, precision: Precision, progress: Progress, channels_last: bool, loss_fn: nn.Module) -> Trainer:
    """The trainer of ``runs`` (the network, compiled or not, or its tail on cached features) on
    ``data``, with its optimizer, schedule and ``loss_fn``."""
    transfer = network.transfer
    if transfer is not None:
        groups = transfer.param_groups(config.weight_decay, config.lr, transfer.lr_mult(config))
    else:
        groups = param_groups(strategy.unwrap(wrapped), config.weight_decay)
    optimizer = build_optimizer(
        config.optimizer, groups, lr=config.lr,
        weight_decay=config.weight_decay, momentum=config.momentum, nesterov=config.nesterov,
    )
    trainer = Trainer(
        runs, optimizer, loss_fn,
        strategy=strategy, precision=precision, mean=list(inputs.mean), std=list(inputs.std),
        batch_size=config.batch_size, progress=progress, num_classes=len(data.classes),
        sample_augment=inputs.sample_augment, batch_augment=inputs.batch_augment, workers=inputs.workers,
        on_train_mode=transfer.keep_frozen_in_eval if transfer is not None else None,
        shuffle_seed=derive_seed(config.seed, "shuffle"),
        augment_seed=derive_seed(config.seed, "augment", strategy.rank),
        channels_last=channels_last, sampler=config.sampler,
    )
    steps_per_epoch = trainer.steps(data.train)
    trainer.scheduler, trainer.scheduler_per_batch = build_scheduler(
        config.scheduler, optimizer, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
        step_size=config.step_size, gamma=config.gamma,
    )
    if config.scheduler == "onecycle" and config.epochs * steps_per_epoch < ONECYCLE_MIN_STEPS:
        warn(
            f"--scheduler onecycle over {config.epochs * steps_per_epoch} step(s) "
            f"({config.epochs} epoch(s) x {steps_per_epoch} batch(es)) spends them warming up and annealing, "
            "at tiny learning rates; train for more steps, or use --scheduler cosine or none."
        )
    return trainer
