"""The hooks a cnnkit plugin implements, one per kind of entry.

Every hook receives one argument, ``register``, typed by the kind's ``Register`` protocol in
``cnnkit.contracts``: ``register(name, factory, *, help="", **metadata)``. ``factory`` is a callable
or a lazy reference ``"package.module:attribute"``; it is called only when the entry is used, so a
plugin module must not import torch at import time. The metadata are that protocol's keyword
parameters; an unknown key is an error naming the valid ones. ``help`` defaults to the first line
of the factory's docstring (a reference has none). What a factory returns is checked by cnnkit,
and a mistake is named with the entry and the plugin.

The hooks are called through pluggy, so ``@hookimpl(tryfirst=True)`` / ``trylast=True`` order an
implementation among the others, and a name registered twice keeps the first registration: plain
implementations run built-ins first, then third-party plugins in entry-point name order; tryfirst
ones run before all of them (they can take a built-in's name), trylast ones after. A wrapper
(``@hookimpl(wrapper=True)``, or pluggy's older ``hookwrapper=True``) runs around all the others:
its single ``yield`` returns the list of ``cnnkit.contracts.Registration`` (what each wrapped
implementation registered, and its error if it failed; an old-style wrapper gets them from
``outcome.get_result()``), so it can observe or audit them; it may call ``register`` itself, before
its ``yield`` (ahead of every other plugin) or after it (behind them). What it returns is ignored:
it cannot undo others' entries. A plugin whose implementation (or wrapper) raises is reported and
its entries of that kind are dropped; the rest still load.
"""

from __future__ import annotations

import pluggy

from cnnkit.contracts._augmentations import AugmentationRegister
from cnnkit.contracts._callbacks import CallbackRegister
from cnnkit.contracts._commands import CommandRegister
from cnnkit.contracts._data import DatasetRegister
from cnnkit.contracts._initializers import InitializerRegister
from cnnkit.contracts._models import ModelRegister
from cnnkit.contracts._strategies import StrategyRegister

hookspec = pluggy.HookspecMarker("cnnkit")


@hookspec
def register_models(register: ModelRegister) -> None:
    """Register model factories: ``factory(*, num_classes, in_channels, **kwargs) -> nn.Module``
    (``cnnkit.contracts.ModelFactory``), the model giving one score per class.

    Metadata: ``input_size=(channels, height, width)`` (the native input), ``params`` (parameter
    count), and for models with pretrained weights ``pretrained``: ``load(weights="") ->
    cnnkit.contracts.Pretrained`` (``weights`` "" for the default, a name such as ``IMAGENET1K_V1``,
    or a file path), which ``cnnkit finetune`` uses; it replaces the head and freezes stages itself.
    A name ending in ``/*`` registers a family: ``lister()`` gives member names, ``describe(member)``
    their metadata, ``member_help`` their help, and the factory is called as
    ``factory(member, *, num_classes, in_channels)``.
    """


@hookspec
def register_datasets(register: DatasetRegister) -> None:
    """Register dataset factories: ``factory(request: DataRequest) -> DataSplits``.

    Both types are in ``cnnkit.contracts``; the splits hold uint8 images of the requested size and
    channels, in memory (``Split``) or read per batch from an ``ImageSource`` (``StreamedSplit``).
    Metadata: ``classes`` (how many).
    """


@hookspec
def register_augmentations(register: AugmentationRegister) -> None:
    """Register augmentations, each with its ``stage``:

    - ``"sample"`` (default): ``factory(**params) -> fn(image) -> image`` on one uint8 ``(C, H, W)``
      image, random from torch's global generator (seeded per sample by cnnkit); ``batched=`` may
      give a factory of the same parameters returning ``fn(images, targets, generator) -> (images,
      targets)`` on float ``(N, C, H, W)`` batches in 0..1 on the training device (targets
      unchanged), used for in-memory data; ``batched_when(params)`` says which parameters it can do;
    - ``"batch"``: ``factory(**params) -> fn(images, targets, generator) -> (images, targets)``,
      mixing images and their class-probability targets (mixup, cutmix);
    - ``"preset"``: a named spec, ``spec="random-crop(padding={pad}), hflip"``; its factory returns
      the spec. ``made_for``, ``eval_crop`` and ``eval_crop_source`` describe it further.

    ``params`` is a tuple of ``cnnkit.contracts.AugmentParam``: what a spec may pass, checked
    before the factory is called.
    """


@hookspec
def register_initializers(register: InitializerRegister) -> None:
    """Register weight initializers: ``factory() -> fn(model)``, which re-initialises the model (or
    a fine-tuned model's new head) in place. With ``needs_batch=True`` the function is called as
    ``fn(model, batch)`` instead, once, with the model on the training device and the first
    training batch as the model gets it (float, normalised), e.g. for LSUV.
    """


@hookspec
def register_strategies(register: StrategyRegister) -> None:
    """Register parallel strategy factories: ``factory(options: StrategyOptions) -> Strategy``.

    Both types are in ``cnnkit.contracts``, with working bases to subclass
    (``SingleProcessStrategy``, ``DistributedStrategy``) and the sharding helper ``shard_steps``.
    A strategy owns the process: device, rank, world size, collectives, sharding, model wrapping,
    which process writes, and (if ``distributed``) launching its workers. The factory is called
    once per process, before anything else is built. Metadata: ``distributed``.
    """


@hookspec
def register_commands(register: CommandRegister) -> None:
    """Register extra CLI commands: ``factory() -> click.Command``, built only when the command
    runs or its help is shown, or a reference ``"package.module:attribute"`` naming the command
    itself; ``help`` is its line in ``cnnkit --help``."""


@hookspec
def register_callbacks(register: CallbackRegister) -> None:
    """Register run callbacks (experiment trackers and other observers), chosen per run with
    ``--log NAME[,NAME]``: ``factory(options: CallbackOptions) -> RunCallback``, both in
    ``cnnkit.contracts`` (subclass ``Callback`` to implement only some events). Only the process
    that writes the run directory observes; a callback that raises is reported once and switched
    off. Metadata: ``requires`` (the pip requirement named when the factory raises ImportError).
    """
