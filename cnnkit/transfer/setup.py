"""A fine-tuning run's model: the pretrained backbone, its new head, what is frozen and when it
thaws, and the parameter groups (a learning-rate multiplier for the backbone)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from cnnkit.console import note, warn
from cnnkit.contracts._models import Preprocessing, Pretrained
from cnnkit.errors import UsageError
from cnnkit.options import TrainConfig
from cnnkit.registry import Entry, guarded
from cnnkit.transfer import surgery
from cnnkit.values import Freeze, is_weights_file, parse_freeze

if TYPE_CHECKING:
    from cnnkit.data.splits import DataSplits


def checkpoint_path(spec: str) -> Path | None:
    """``spec`` as a cnnkit checkpoint: a ``.pt`` file, or a run directory's ``best.pt``."""
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "best.pt").is_file():
        return path / "best.pt"
    return path if path.suffix == ".pt" and path.is_file() else None


def backbone_entry(config: TrainConfig) -> Entry | None:
    """The registered model ``--backbone`` names; None for a cnnkit checkpoint (also for one gone
    since the run started: a resumed run takes every weight from its ``last.pt``)."""
    from cnnkit.plugins import registry

    if checkpoint_path(config.backbone) is not None or (config.resume and Path(config.backbone).is_absolute()):
        return None
    return registry("models").get(config.backbone)


def load_pretrained(entry: Entry | None, config: TrainConfig, saved: dict | None = None) -> Pretrained:
    """The backbone before its head is replaced; for a resumed run (``saved``: its ``last.pt``),
    the architecture alone, without reading any pretrained weights."""
    if saved is not None:
        return resumed_backbone(saved)
    path = checkpoint_path(config.backbone)
    if path is not None:
        return _from_checkpoint(path, config)
    if entry is None:
        raise UsageError(f"--backbone '{config.backbone}' is neither a model name (see 'cnnkit models') nor a cnnkit checkpoint.")
    return _from_entry(entry, config)


def _from_checkpoint(path: Path, config: TrainConfig) -> Pretrained:
    """A cnnkit run's weights as the backbone (or, with ``--no-pretrained``, its architecture and
    preprocessing from a random initialisation)."""
    from cnnkit.transfer.pretrained import checkpoint_pretrained

    pretrained = checkpoint_pretrained(path)
    if not config.pretrained and pretrained.rebuild is not None:
        from cnnkit.plugins import registry

        name, kwargs = pretrained.rebuild
        fresh = registry("models").get(name).create(**kwargs)
        prep = pretrained.preprocessing
        return Pretrained(fresh, Preprocessing(prep.input_size, (), ()), f"{name} (random initialisation)", pretrained.rebuild)
    if config.weights:
        raise UsageError("--weights does not apply to a cnnkit run as --backbone: its weights are the run's.")
    return pretrained


def _from_entry(entry: Entry, config: TrainConfig) -> Pretrained:
    """A registered model's pretrained weights (its loader's, or a ``--weights`` file for a model
    without a loader), or a random initialisation with ``--no-pretrained``."""
    from cnnkit.transfer.pretrained import load_into, read_state_dict

    size = tuple(entry.metadata.get("input_size", (3, 224, 224)))
    if not config.pretrained:  # the data's own statistics, as 'cnnkit train' uses
        model = guarded(entry, lambda: entry.create(num_classes=1000, in_channels=size[0]))
        return Pretrained(model, Preprocessing(size, (), ()), f"{entry.name} (random initialisation)")
    loader = entry.metadata.get("pretrained")
    if loader is not None:
        return guarded(entry, lambda: loader(config.weights))
    if not is_weights_file(config.weights):
        raise UsageError(f"Model '{entry.name}' has no pretrained weights; pass --weights FILE, a cnnkit run as --backbone, "
                         "or --no-pretrained.")
    state = read_state_dict(Path(config.weights))
    head = [k for k in state if k.endswith(".weight")][-1]
    model = guarded(entry, lambda: entry.create(num_classes=int(state[head].shape[0]), in_channels=size[0]))
    load_into(model, state, f"'{config.weights}'")
    return Pretrained(model, Preprocessing(size, (), ()), f"{entry.name} from {config.weights}")


def resumed_backbone(saved: dict) -> Pretrained:
    """The architecture ``last.pt`` names (random weights: ``last.pt`` holds them all), and the
    preprocessing the run used; no pretrained file or cache is read."""
    from cnnkit.plugins import registry

    name, kwargs = saved["model"]["name"], dict(saved["model"]["kwargs"])
    entry = registry("models").get(name)
    model = guarded(entry, lambda: entry.create(**kwargs))
    kept = (saved.get("transfer") or {}).get("preprocessing")
    if kept:  # as the backbone gave it: the data are read as in the run's first epoch
        preprocessing = Preprocessing(tuple(kept["input_size"]), tuple(kept["mean"]), tuple(kept["std"]),
                                      str(kept["interpolation"]), float(kept["crop_fraction"]))
    else:  # a last.pt of an earlier cnnkit: what the run read its images as
        norm, read = saved["normalization"], saved.get("preprocessing", {})
        preprocessing = Preprocessing(tuple(saved["input_size"]), tuple(norm["mean"]), tuple(norm["std"]),
                                      interpolation=str(read.get("interpolation", "bilinear")),
                                      crop_fraction=float(read.get("crop_fraction", 1.0)))
    return Pretrained(model, preprocessing, f"{name}, weights from last.pt", (name, kwargs))


@dataclass
class Transfer:
    """The backbone with its new head, and its freezing over the run."""

    model: nn.Module
    preprocessing: Preprocessing
    source: str
    head: str
    """The classifier layer's dotted name (``heads`` lists all, for timm's distilled models)."""
    model_name: str
    model_kwargs: dict
    frozen: list[tuple[str, nn.Module]] = field(default_factory=list)
    unfreeze_at: int = 0
    heads: list[str] = field(default_factory=list)

    backbone_lr_mult: float | None = None
    """The backbone's rate factor ``--freeze auto`` chose (None: ``--backbone-lr-mult``'s default)."""
    truncate: dict | None = None
    """Where the backbone was cut (``--freeze auto``, small + different data), as checkpoints record it."""
    freeze: Freeze = Freeze("features")
    """What stays frozen: ``--freeze``, or what the rule (``auto``) or a resumed run's record decided."""

    @classmethod
    def build(cls, pretrained: Pretrained, num_classes: int, config: TrainConfig, data: DataSplits | None = None,
              input_size: Sequence[int] | None = None, saved: dict | None = None, *, freeze: Freeze | None = None) -> Transfer:
        """The backbone with its new head, frozen as ``freeze`` says (``--freeze auto``: as the
        rule decides; None: ``config.freeze``). A resumed run (``saved``: its ``last.pt``) takes
        the decisions from ``last.pt``, and then its weights (the caller loads them)."""
        if freeze is None:
            freeze = parse_freeze(config.freeze, pretrained=config.pretrained)
        model = pretrained.model
        heads = surgery.new_heads(model, num_classes)
        inherited = getattr(model, "cnnkit_truncate", None)  # a cnnkit run cut by --freeze auto, as --backbone
        if inherited is not None:
            surgery.fit_head(model, inherited, num_classes)  # timm's reset_classifier makes it for the uncut width
        name, kwargs = pretrained.rebuild or (config.backbone, {"in_channels": pretrained.preprocessing.input_size[0]})
        transfer = cls(model, pretrained.preprocessing, pretrained.source, heads[0], name, kwargs, unfreeze_at=config.unfreeze_at)
        transfer.heads = heads
        if input_size is not None:
            check_input_size(model, config.backbone, input_size, pretrained.preprocessing.input_size)
        transfer.decide(config, freeze, data, list(input_size or pretrained.preprocessing.input_size), saved)
        transfer.cut(inherited if saved is None else None, num_classes)
        transfer.frozen = surgery.frozen_modules(transfer.model, transfer.heads, transfer.freeze)
        surgery.freeze(transfer.frozen)
        if config.unfreeze_at and not transfer.frozen:
            chose = f" (--freeze auto chose {transfer.freeze})" if freeze.auto else ""
            raise UsageError(f"--unfreeze-at needs something frozen first{chose}: pass --freeze features or --freeze N.")
        if saved is None:
            transfer.warn_unused(config, chosen_by_rule=freeze.auto)
        return transfer

    def decide(self, config: TrainConfig, freeze: Freeze, data: DataSplits | None, size: list[int], saved: dict | None) -> None:
        """What freezes: ``freeze``, the rule's decision for ``auto``, or a resumed run's record."""
        self.freeze = freeze
        record = saved.get("transfer") if saved is not None else None
        if isinstance(record, dict):
            self.truncate = record.get("truncate")
            if freeze.auto:
                self.freeze, self.backbone_lr_mult = parse_freeze(record["freeze"]), record.get("backbone_lr_mult")
        elif saved is not None and freeze.auto:
            raise UsageError("This run's last.pt does not record what --freeze auto decided (it was written by an older "
                             "cnnkit); start a new run.")
        elif freeze.auto:
            from cnnkit.transfer.auto import decide

            decision = decide(self, data, config, size)
            self.freeze, self.backbone_lr_mult, self.truncate = parse_freeze(decision.freeze), decision.backbone_lr_mult, decision.truncate

    def cut(self, inherited: dict | None, num_classes: int) -> None:
        """Cut the backbone where the rule decided (or the resumed run recorded); a backbone cut
        before (``inherited``, a cnnkit run as ``--backbone``) keeps that cut in the record."""
        if self.truncate is None:
            self.truncate = inherited
            return
        if inherited is not None:
            self.truncate = {**self.truncate, "removed": [*inherited["removed"], *self.truncate["removed"]]}
        surgery.truncate(self.model, self.truncate, num_classes)

    def record(self) -> dict:
        """The decisions a checkpoint keeps: a resumed run repeats them, and the cut rebuilds the model."""
        prep = self.preprocessing
        preprocessing = {"input_size": list(prep.input_size), "mean": list(prep.mean), "std": list(prep.std),
                         "interpolation": prep.interpolation, "crop_fraction": prep.crop_fraction}
        return {"freeze": str(self.freeze), "backbone_lr_mult": self.backbone_lr_mult, "truncate": self.truncate,
                "preprocessing": preprocessing}

    def lr_mult(self, config: TrainConfig) -> float:
        """The backbone's rate factor: ``--backbone-lr-mult``, else the rule's, else 0.1 with
        ``--unfreeze-at`` and 1 without."""
        if config.backbone_lr_mult is not None:
            return config.backbone_lr_mult
        if self.backbone_lr_mult is not None:
            return self.backbone_lr_mult
        return 0.1 if config.unfreeze_at else 1.0

    def warn_unused(self, config: TrainConfig, *, chosen_by_rule: bool = False) -> None:
        """Warnings for options without effect in this run: ``--unfreeze-at`` after the last epoch
        (a resume with more epochs would reach it), ``--backbone-lr-mult`` when only the head trains
        (``chosen_by_rule``: because ``--freeze auto`` chose so)."""
        if config.unfreeze_at > config.epochs:
            warn(f"--unfreeze-at {config.unfreeze_at} comes after the last epoch (--epochs {config.epochs}): nothing thaws in "
                 f"this run (a --resume with --epochs {config.unfreeze_at} or more would thaw it).")
        head = {id(p) for p in self.head_module().parameters()}
        only_head = all(id(p) in head for p in self.model.parameters() if p.requires_grad)
        if config.backbone_lr_mult is not None and only_head and not config.unfreeze_at:
            chose = " (--freeze auto chose so)" if chosen_by_rule else ""
            warn(f"--backbone-lr-mult {config.backbone_lr_mult:g} has no effect: only the new head trains{chose} and nothing "
                 "thaws; drop it, or train backbone layers with --freeze N or --unfreeze-at EPOCH.")

    def keep_frozen_in_eval(self) -> None:
        surgery.keep_frozen_in_eval(self.frozen)

    def head_module(self) -> nn.Module:
        """The new classifier (all of them, for a model with several)."""
        if len(self.heads) > 1:
            return nn.ModuleList(surgery.get_module(self.model, name) for name in self.heads)
        return surgery.get_module(self.model, self.head)

    def describe(self) -> str:
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.model.parameters())
        names = ", ".join(n for n, _ in self.frozen[:4]) + (", ..." if len(self.frozen) > 4 else "")
        frozen = f"{len(self.frozen)} stage(s) frozen ({names})" if self.frozen else "nothing frozen"
        thaw = f", all trainable from epoch {self.unfreeze_at}" if self.unfreeze_at else ""
        head = f"new head '{self.head}' on the output of '{self.truncate['tap']}' (the layers with weights after it removed)" \
            if self.truncate else f"new head '{self.head}'"
        return f"{self.source}; {head}; {frozen}{thaw}; {trainable:,} of {total:,} parameters train"

    def param_groups(self, weight_decay: float, lr: float, backbone_lr_mult: float) -> list[dict]:
        """Weight-decay groups for the head and for the backbone (at ``lr * backbone_lr_mult``).
        Frozen parameters are left out, unless they thaw later (``--unfreeze-at``): then they are
        in from the start, and take no step while they have no gradient."""
        from cnnkit.engine.optim import param_groups

        head_ids = {id(p) for p in self.head_module().parameters()}
        thawing = self.unfreeze_at > 0
        groups = []
        for is_head in (True, False):
            params = [(n, p) for n, p in self.model.named_parameters()
                      if (id(p) in head_ids) == is_head and (p.requires_grad or thawing)]
            holder = _Params(params)
            for group in param_groups(holder, weight_decay, include_frozen=thawing):
                if group["params"]:
                    groups.append({**group, "lr": lr if is_head else lr * backbone_lr_mult})
        return groups

    def at_epoch(self, epoch: int) -> None:
        """Thaw everything from epoch ``unfreeze_at`` on (also after a resume past it)."""
        if self.unfreeze_at and epoch >= self.unfreeze_at and self.frozen:
            surgery.unfreeze(self.model)
            self.frozen = []
            note(f"epoch {epoch}: the whole network trains now (--unfreeze-at {self.unfreeze_at}).")


class _Params(nn.Module):
    """A module that only lists the given named parameters (for :func:`param_groups`)."""

    def __init__(self, named):
        super().__init__()
        self._named = named

    def named_parameters(self, *args, **kwargs):
        return iter(self._named)


def check_input_size(model: nn.Module, backbone: str, size: Sequence[int], native: tuple[int, ...]) -> None:
    """A usage error, not a crash mid-run, when the backbone cannot take ``size`` images."""
    import torch

    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(2, *size))
    except (RuntimeError, ValueError, AssertionError) as exc:
        lines = str(exc).strip().splitlines()
        raise UsageError(f"Backbone '{backbone}' cannot take {size[1]}x{size[2]} images ({lines[0] if lines else type(exc).__name__}); "
                         f"its weights were trained at {native[1]}x{native[2]}: leave --image-size out or choose a larger size.") from None
    finally:
        model.train()


def check_options(config: TrainConfig) -> Freeze:
    """``--freeze`` parsed, after usage errors for transfer options that are malformed or
    contradict each other."""
    freeze = parse_freeze(config.freeze, pretrained=config.pretrained)
    check_contradictions(config, freeze)
    if config.similar is not None and not freeze.auto:
        raise UsageError("--similar/--different only apply to --freeze auto.")
    if config.resume and Path(config.backbone).is_absolute():
        return freeze  # a checkpoint the run started from: last.pt holds its weights now, whether it is still there or not
    if checkpoint_path(config.backbone) is None and config.backbone.endswith(".pt") and not Path(config.backbone).exists():
        raise UsageError(f"--backbone '{config.backbone}' does not exist.")
    if checkpoint_path(config.backbone) is None and (config.backbone.endswith(".pt") or Path(config.backbone).exists()):
        raise UsageError(f"--backbone '{config.backbone}' is not a cnnkit checkpoint (a .pt file, or a run directory "
                         "with best.pt), nor a model name (see 'cnnkit models').")
    return freeze


def check_contradictions(config: TrainConfig, freeze: Freeze) -> None:
    """Options that cannot all hold: refused, naming the way out (exit 2)."""
    if not config.pretrained and config.weights:
        raise UsageError(f"--weights {config.weights} and --no-pretrained contradict each other: --weights loads pretrained "
                         "weights, --no-pretrained starts from a random initialisation; drop one.")
    if not config.pretrained and not freeze.freezes_nothing:
        raise UsageError(f"--no-pretrained --freeze {config.freeze} would freeze randomly initialised layers (a head on frozen "
                         "random features); pass --freeze none (the default with --no-pretrained), or drop --no-pretrained.")
    if not config.pretrained and config.unfreeze_at:
        raise UsageError("--unfreeze-at thaws pretrained layers, but with --no-pretrained nothing is frozen; drop --unfreeze-at.")
    if freeze.freezes_nothing and config.unfreeze_at:
        raise UsageError("--unfreeze-at needs something frozen first: pass --freeze features or --freeze N.")
    if config.backbone_lr_mult == 0:
        raise UsageError("--backbone-lr-mult 0 would compute the backbone's gradients and never apply them; to keep the "
                         "backbone as it is, pass --freeze features (only the head trains), or a factor above 0.")
