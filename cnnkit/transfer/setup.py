"""A fine-tuning run's model: the pretrained backbone, its new head, what is frozen and when it
thaws, and the parameter groups (a learning-rate multiplier for the backbone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from cnnkit.config import TrainConfig
from cnnkit.console import note
from cnnkit.contracts import Preprocessing, Pretrained
from cnnkit.engine.plan import from_plugin
from cnnkit.errors import UsageError
from cnnkit.registry import Entry
from cnnkit.transfer import surgery


def checkpoint_path(spec: str) -> Path | None:
    """``spec`` as a cnnkit checkpoint: a ``.pt`` file, or a run directory's ``best.pt``."""
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "best.pt").is_file():
        return path / "best.pt"
    return path if path.suffix == ".pt" and path.is_file() else None


def load_pretrained(entry: Entry | None, config: TrainConfig) -> Pretrained:
    """The backbone before its head is replaced."""
    from cnnkit.transfer.pretrained import checkpoint_pretrained, is_file_spec, load_into, read_state_dict

    path = checkpoint_path(config.backbone)
    if path is not None:
        pretrained = checkpoint_pretrained(path)
        if not config.pretrained:  # the same architecture and preprocessing, from a random initialisation
            name, kwargs = pretrained.rebuild
            from cnnkit.plugins import registry

            fresh = registry("models").get(name).create(**kwargs)
            prep = pretrained.preprocessing
            return Pretrained(fresh, Preprocessing(prep.input_size, (), ()), f"{name} (random initialisation)", pretrained.rebuild)
        if config.weights:
            raise UsageError("--weights does not apply to a cnnkit run as --backbone: its weights are the run's.")
        return pretrained
    if not config.pretrained:  # the data's own statistics, as 'cnnkit train' uses
        size = tuple(entry.metadata.get("input_size", (3, 224, 224)))
        model = from_plugin(entry, lambda: entry.create(num_classes=1000, in_channels=size[0]))
        return Pretrained(model, Preprocessing(size, (), ()), f"{entry.name} (random initialisation)")
    loader = entry.metadata.get("pretrained")
    if loader is None:
        if is_file_spec(config.weights):
            size = tuple(entry.metadata.get("input_size", (3, 224, 224)))
            state = read_state_dict(Path(config.weights))
            head = [k for k in state if k.endswith(".weight")][-1]
            model = from_plugin(entry, lambda: entry.create(num_classes=int(state[head].shape[0]), in_channels=size[0]))
            load_into(model, state, f"'{config.weights}'")
            return Pretrained(model, Preprocessing(size, (), ()), f"{entry.name} from {config.weights}")
        raise UsageError(f"Model '{entry.name}' has no pretrained weights; pass --weights FILE, a cnnkit run as --backbone, "
                         "or --no-pretrained.")
    return from_plugin(entry, lambda: loader(config.weights))


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

    @classmethod
    def build(cls, pretrained: Pretrained, num_classes: int, config: TrainConfig, data=None, input_size=None) -> Transfer:
        model = pretrained.model
        heads = surgery.new_heads(model, num_classes)
        name, kwargs = pretrained.rebuild or (config.backbone, {"in_channels": pretrained.preprocessing.input_size[0]})
        transfer = cls(model, pretrained.preprocessing, pretrained.source, heads[0], name, kwargs, unfreeze_at=config.unfreeze_at)
        transfer.heads = heads
        freeze = config.freeze or "features"
        if freeze == "auto":
            from cnnkit.transfer.auto import decide

            freeze = decide(transfer, data, config)
        if input_size is not None:
            check_input_size(model, config.backbone, input_size, pretrained.preprocessing.input_size)
        transfer.frozen = surgery.frozen_modules(model, heads, freeze)
        surgery.freeze(transfer.frozen)
        if config.unfreeze_at and not transfer.frozen:
            raise UsageError("--unfreeze-at needs something frozen first: pass --freeze features or --freeze N.")
        return transfer

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
        frozen = f"{len(self.frozen)} stage(s) frozen ({', '.join(n for n, _ in self.frozen[:4])}{', ...' if len(self.frozen) > 4 else ''})" \
            if self.frozen else "nothing frozen"
        thaw = f", all trainable from epoch {self.unfreeze_at}" if self.unfreeze_at else ""
        return f"{self.source}; new head '{self.head}'; {frozen}{thaw}; {trainable:,} of {total:,} parameters train"

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


def check_input_size(model: nn.Module, backbone: str, size: list[int], native: tuple[int, ...]) -> None:
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


def check_options(config: TrainConfig) -> None:
    if config.freeze not in ("", "none", "features", "auto") and not (config.freeze.isascii() and config.freeze.isdigit()):
        raise UsageError(f"--freeze '{config.freeze}' must be features, none, auto or a number of stages.")
    if config.freeze == "none" and config.unfreeze_at:
        raise UsageError("--unfreeze-at needs something frozen first: pass --freeze features or --freeze N.")
    if config.similar is not None and config.freeze != "auto":
        raise UsageError("--similar/--different only apply to --freeze auto.")
    if checkpoint_path(config.backbone) is None and config.backbone.endswith(".pt") and not Path(config.backbone).exists():
        raise UsageError(f"--backbone '{config.backbone}' does not exist.")
    if checkpoint_path(config.backbone) is None and (config.backbone.endswith(".pt") or Path(config.backbone).exists()):
        raise UsageError(f"--backbone '{config.backbone}' is not a cnnkit checkpoint (a .pt file, or a run directory "
                         "with best.pt), nor a model name (see 'cnnkit models').")
