"""The hook contract between cnnkit and its plugins.

Every hook receives one keyword argument, ``register``, a callback with the signature
``register(name, factory, *, help="", **metadata)``. Factories are called only when the entry is
used, so a plugin module must not import torch at import time; the factory does.
"""

import pluggy

hookspec = pluggy.HookspecMarker("cnnkit")


@hookspec
def register_models(register):
    """Register model factories: ``factory(*, num_classes, in_channels, **kwargs) -> nn.Module``.

    Metadata: ``input_size=(channels, height, width)`` (the native input), ``params``, and for
    models with pretrained weights ``pretrained``: ``load(weights="") -> cnnkit.contracts.Pretrained``
    (``weights`` "" for the default, a name such as ``IMAGENET1K_V1``, or a file path), which
    ``cnnkit finetune`` uses; it replaces the head and freezes stages itself. A name
    ending in ``/*`` registers a family: ``lister()`` gives member names, ``describe(member)``
    their metadata, and the factory is called as ``factory(member, *, num_classes, in_channels)``.
    """


@hookspec
def register_datasets(register):
    """Register dataset factories: ``factory(request: DataRequest) -> DataSplits``.

    Both types are in ``cnnkit.contracts``. Metadata: ``classes`` (how many).
    """


@hookspec
def register_augmentations(register):
    """Register batch augmentation factories: ``factory() -> fn(images, generator) -> images``."""


@hookspec
def register_initializers(register):
    """Register weight initializer factories: ``factory() -> fn(module) -> None``."""


@hookspec
def register_strategies(register):
    """Register parallel strategy factories: ``factory(options: StrategyOptions) -> Strategy``.

    Both types are in ``cnnkit.contracts``. A strategy owns the process: device, rank, world size,
    collectives, sharding, model wrapping, which process writes, and (if ``distributed``)
    launching its workers. The factory is called once per process, before anything else is built.
    """


@hookspec
def register_commands(register):
    """Register extra CLI commands: ``factory() -> click.Command``."""
