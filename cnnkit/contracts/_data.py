"""The dataset contract: ``factory(request: DataRequest) -> DataSplits``.

``DataSplits`` (with ``Split`` and ``StreamedSplit``) is the container a factory builds; it needs
torch, so it lives in ``cnnkit.data`` and the facade ``cnnkit.contracts`` exports it lazily. This
module describes it as protocols (:class:`DataSplitsLike`, :class:`SplitLike`), which is all the
contract needs to type a factory and all the registry needs to check what one returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy
    import torch


@dataclass(frozen=True)
class DataRequest:
    """What ``cnnkit train`` hands a dataset factory: ``factory(request) -> DataSplits``.

    ``image_size`` is (height, width) and ``channels`` 1 or 3: what the model takes. A factory
    returns splits of that shape, either in memory (:class:`Split`, uint8 ``(N, C, H, W)``) or as
    :class:`StreamedSplit` over an :class:`ImageSource`; cnnkit decides which streamed data it
    reads into memory (``--data-in-memory``, ``--memory-budget``). ``val_split`` and ``seed``
    say how to split validation off the training data when the dataset has no validation split.
    ``data_dir`` is where datasets known by name keep their files; ``download`` whether they may
    fetch missing ones. ``as_weights`` asks for images read exactly as pretrained weights' own
    ``transforms()`` read them (decoded whole, the shorter side resized to the side over
    ``crop_fraction``, the centre cropped); cnnkit sets it when fine-tuning pretrained weights.
    Without it a reader may take faster ways (a large JPEG decoded at a reduced scale).
    """

    image_size: tuple[int, int]
    channels: int
    val_split: float = 0.2
    seed: int = 0
    data_dir: str = ""
    download: bool = True
    crop_fraction: float = 1.0
    """Share of the centre kept before resizing (pretrained weights' evaluation crop, 224/256)."""
    interpolation: str = "bilinear"
    as_weights: bool = False


@runtime_checkable
class ImageSource(Protocol):
    """Samples a :class:`StreamedSplit` reads one at a time (in ``DataLoader`` workers, so it
    must pickle). ``read`` raises ``cnnkit.contracts.UnreadableImage`` for a sample it cannot
    read; that sample is skipped with a warning."""

    @property
    def labels(self) -> torch.Tensor:
        """int64 ``(N,)``: the class index of every sample."""

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every array ``read`` returns."""

    def __len__(self) -> int: ...

    def read(self, index: int) -> numpy.ndarray:
        """Sample ``index`` as uint8 ``(C, H, W)``."""

    def name(self, index: int) -> str:
        """How messages name sample ``index`` (its file path)."""


class SplitLike(Protocol):
    """One split of a dataset, as ``Split`` (in memory) and ``StreamedSplit`` (read per batch) are."""

    @property
    def labels(self) -> torch.Tensor:
        """int64 ``(N,)``: the class index of every sample."""

    def __len__(self) -> int: ...


@runtime_checkable
class DataSplitsLike(Protocol):
    """What a dataset factory returns, as a protocol: the fields of ``cnnkit.contracts.DataSplits``
    (the class a factory builds), described without importing it. The registry refuses a result
    that lacks one of them."""

    @property
    def train(self) -> SplitLike: ...

    @property
    def val(self) -> SplitLike: ...

    @property
    def test(self) -> SplitLike | None: ...

    @property
    def classes(self) -> Sequence[str]:
        """The class names, by class index."""

    @property
    def source(self) -> str:
        """A line describing the data, shown when training starts."""

    @property
    def native(self) -> tuple[int, int, int] | None:
        """(channels, height, width) as stored, or None for data served at any size by design."""

    @property
    def mean(self) -> Sequence[float] | None:
        """Published per-channel mean on the 0..1 scale; None: cnnkit measures it."""

    @property
    def std(self) -> Sequence[float] | None: ...

    @property
    def skipped(self) -> Sequence[tuple[str, str]]:
        """(file, reason) for every file left out because it could not be read."""


class DatasetFactory(Protocol):
    """Reads a dataset at the size the model takes; called once per run (and per command that
    reads data)."""

    def __call__(self, request: DataRequest, /) -> DataSplitsLike: ...


class DatasetRegister(Protocol):
    """The ``register`` that ``register_datasets`` receives.

    ``classes``: how many classes the dataset has, shown by ``cnnkit datasets`` without reading it.
    """

    def __call__(self, name: str, factory: DatasetFactory | str, *, help: str = "",
                 classes: int | None = None) -> None: ...
