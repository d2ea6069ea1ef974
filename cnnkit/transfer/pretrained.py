"""Pretrained backbones through the libraries' own loading code, offline first.

- torchvision: the weights enum (``DEFAULT``, ``IMAGENET1K_V1``, ...), fetched by
  ``torch.hub.load_state_dict_from_url`` into ``$TORCH_HOME/hub/checkpoints`` (read from there
  when present), loaded with ``weights_only=True``; preprocessing from the weights' transforms.
- timm: ``timm.create_model(pretrained=True)``, which resolves the weights through the Hugging
  Face cache (``HF_HUB_OFFLINE=1`` keeps it offline) as safetensors; preprocessing from the
  model's ``pretrained_cfg``.
- cached files are checked before they are loaded, also when nothing is downloaded: torchvision's
  against the sha256 prefix their name carries (``resnet18-f37072fd.pth``, torch.hub's check on
  download), the Hugging Face cache's against the hash their blob is named by.
- a cnnkit checkpoint: the model it names, its weights, its normalisation and input size.
- ``--weights FILE`` (``.pth``/``.pt`` or ``.safetensors``) for any of them: a state dict loaded
  safely into the architecture, mismatches listed.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, cast

from cnnkit.contracts._models import Preprocessing, Pretrained
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.models.library import WITHOUT_AUX
from cnnkit.registry import unknown_name_message
from cnnkit.values import is_weights_file

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def read_state_dict(path: Path) -> dict:
    """A state dict from ``path``, never unpickling objects; a cnnkit checkpoint gives its weights."""
    if not path.is_file():
        raise UsageError(f"--weights file '{path}' {'is not a file' if path.exists() else 'does not exist'}.")
    state: object
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            import torch

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        pickled = "Weights only load failed" in str(exc)
        why = "it holds pickled objects other than tensors, which cnnkit does not load" if pickled else \
            "not a PyTorch or safetensors weights file"
        raise CnnkitError(f"Cannot load weights '{path}' safely: {why}.") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise CnnkitError(f"'{path}' holds no state dict (a mapping of parameter names to tensors).")
    return state


DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def renamed(state: dict) -> dict:
    """Keys of torchvision's published DenseNet files (``norm.1``) as its modules name them
    (``norm1``), as torchvision's own loader renames them."""
    out = {}
    for key, value in state.items():
        match = DENSENET_OLD_KEY.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


def load_into(model, state: dict, source: str) -> None:
    """``state`` into ``model``, or one error listing the first keys and shapes that do not fit.
    A classifier of another class count is fine: cnnkit replaces it anyway."""
    from cnnkit.engine.checkpoint import state_mismatch
    from cnnkit.transfer.surgery import find_head

    state = renamed(state)
    own = model.state_dict()
    try:
        head = find_head(model) + "."
    except CnnkitError:
        head = "\0"  # no classifier to spare
    state = {k: (own[k] if k.startswith(head) and k in own and hasattr(v, "shape") and v.shape != own[k].shape else v)
             for k, v in state.items()}
    mismatch = state_mismatch(own, state)
    if mismatch:
        raise CnnkitError(f"The weights of {source} do not fit this model ({mismatch}); another architecture "
                          "or class count? Pass weights made for it.")
    model.load_state_dict(state)


def _offline_error(what: str, file: str, cache: str, exc: BaseException) -> CnnkitError:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    why = lines[-1].strip().split(". ")[0] if lines else type(exc).__name__
    return CnnkitError(
        f"Pretrained weights for {what} are not cached and could not be downloaded ({why[:200]}); put {file} in "
        f"'{cache}', pass --weights FILE, or --no-pretrained to train from scratch."
    )


def file_digest(path: str, algorithm: str = "sha256", prefix: bytes = b"") -> str:
    import hashlib

    digest = hashlib.new(algorithm, prefix)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


WAY_OUT = "delete it to download it again, or pass it with --weights FILE to use it as it is"


def check_hash_in_name(path: str) -> None:
    """torch.hub's check on download, made on every load: the sha256 of a cached file must start
    with the hash prefix its name carries (``resnet18-f37072fd.pth``)."""
    from torch.hub import HASH_REGEX

    match = HASH_REGEX.search(os.path.basename(path))
    if not match or not match.group(1) or not os.path.isfile(path):
        return
    expected = match.group(1)
    actual = file_digest(path)
    if not actual.startswith(expected):
        raise CnnkitError(f"The cached weights '{path}' are not the published file: their sha256 begins {actual[:len(expected)]}, "
                          f"their name says {expected}; {WAY_OUT}.")


def check_hub_blob(path: str) -> None:
    """The Hugging Face cache names each file's content by its hash (``blobs/<sha256>`` for large
    files, the git blob sha1 for others); a cached file must have the hash its blob name records."""
    real = os.path.realpath(path)
    recorded = os.path.basename(real)
    if os.path.basename(os.path.dirname(real)) != "blobs" or not os.path.isfile(real):
        return
    if re.fullmatch(r"[0-9a-f]{64}", recorded):
        actual = file_digest(real)
    elif re.fullmatch(r"[0-9a-f]{40}", recorded):
        actual = file_digest(real, "sha1", f"blob {os.path.getsize(real)}\0".encode())
    else:
        return
    if actual != recorded:
        raise CnnkitError(f"The cached weights '{real}' (for '{path}') do not have the hash the Hugging Face cache records "
                          f"for them (their name {recorded[:12]}..., their content {actual[:12]}...); {WAY_OUT}.")


def check_timm_cache(name: str) -> None:
    """The cached files timm would load for ``name``, checked against the hashes their caches record."""
    import timm
    import torch

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return
    if cfg.hf_hub_id:
        from huggingface_hub import constants, try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for file in files:
            found = try_to_load_from_cache(repo, file, cache_dir=constants.HF_HUB_CACHE, revision=revision or None)
            if isinstance(found, str):
                check_hub_blob(found)
    if isinstance(cfg.url, str) and cfg.url:
        check_hash_in_name(os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(cfg.url)))


def torchvision_pretrained(name: str, weights: str = "") -> Pretrained:
    """Images are fed as the weights were trained: RGB (grayscale data is repeated to 3 channels)."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(name)
    if is_weights_file(weights):
        chosen = enum.DEFAULT
        state = without_aux(name, read_state_dict(Path(weights)))
        model = torchvision_architecture(name, chosen)
        load_into(model, state, f"'{weights}'")
        source = f"torchvision {name} with weights from {weights}"
    else:
        names = [w.name for w in enum]
        if weights and weights != "DEFAULT" and weights not in names:
            raise UsageError(unknown_name_message(f"weights for {name}", weights, names, f"Choose one of: DEFAULT, {', '.join(names)}."))
        chosen = enum.DEFAULT if weights in ("", "DEFAULT") else enum[weights]
        model = torchvision_architecture(name, chosen)
        load_into(model, without_aux(name, published_state(name, chosen)), f"{name} {chosen.name}")
        source = f"torchvision {name} {chosen.name}"
    rebuild: tuple[str, dict[str, object]] | None = None
    if name in WITHOUT_AUX:
        rebuild = (name, {"in_channels": 3, "transform_input": True})  # rebuilt as torchvision builds it for these weights
    transforms = chosen.transforms()
    crop, resize = transforms.crop_size[0], transforms.resize_size[0]
    preprocessing = Preprocessing(
        input_size=(3, crop, crop), mean=tuple(transforms.mean), std=tuple(transforms.std),
        interpolation=str(transforms.interpolation.value), crop_fraction=round(crop / resize, 4),
    )
    return Pretrained(model, preprocessing, source, rebuild)


def torchvision_architecture(name: str, chosen):
    """torchvision's network ``name`` without weights, with ``chosen`` weights' class count, built
    as torchvision builds it for its pretrained weights (one head, the input transform on)."""
    from torchvision.models import get_model

    extra = {"aux_logits": False, "init_weights": False, "transform_input": True} if name in WITHOUT_AUX else {}
    return get_model(name, weights=None, num_classes=len(chosen.meta["categories"]), **extra)


def without_aux(name: str, state: dict) -> dict:
    """``state`` without the auxiliary classifiers, which cnnkit builds these models without."""
    return {k: v for k, v in state.items() if not k.startswith("aux")} if name in WITHOUT_AUX else state


def published_state(name: str, chosen) -> dict:
    """The state dict of torchvision's ``chosen`` weights, from the hub cache (checked) or downloaded."""
    import torch

    file = os.path.basename(chosen.url)
    cache = os.path.join(torch.hub.get_dir(), "checkpoints")
    cached = os.path.join(cache, file)
    check_hash_in_name(cached)
    try:
        return chosen.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except Exception as exc:
        if os.path.isfile(cached):
            raise CnnkitError(f"The cached weights '{cached}' cannot be read ({type(exc).__name__}); delete the file "
                              "to download it again, or pass --weights FILE.") from None
        raise _offline_error(f"{name} ({chosen.name})", file, cache, exc) from None


def timm_pretrained(name: str, weights: str = "") -> Pretrained:
    import timm

    if weights and not is_weights_file(weights):
        raise UsageError(f"timm models name their weights in the model name (timm/{name}.TAG); --weights takes a file here.")
    if is_weights_file(weights):
        model = timm.create_model(name, pretrained=False)
        load_into(model, read_state_dict(Path(weights)), f"'{weights}'")
        source = f"timm {name} with weights from {weights}"
    else:
        check_timm_cache(name)
        try:
            model = timm.create_model(name, pretrained=True)
        except (OSError, RuntimeError, ValueError) as exc:  # huggingface_hub's cache misses are OSErrors
            from huggingface_hub import constants

            cfg = timm.models.get_pretrained_cfg(name)
            repo = (cfg.hf_hub_id if cfg is not None and cfg.hf_hub_id else f"timm/{name}").replace("/", "--")
            raise _offline_error(f"timm/{name}", f"models--{repo}/snapshots/<revision>/model.safetensors (and refs/main)",
                                 constants.HF_HUB_CACHE, exc) from None
        source = f"timm {name} (pretrained)"
    settings = cast("dict[str, Any]", model.pretrained_cfg)  # timm's models carry it as a dict
    size = tuple(settings.get("input_size", (3, 224, 224)))
    preprocessing = Preprocessing(
        input_size=(3, size[1], size[2]), mean=tuple(settings.get("mean", IMAGENET_MEAN)),
        std=tuple(settings.get("std", IMAGENET_STD)), interpolation=str(settings.get("interpolation", "bilinear")),
        crop_fraction=float(settings.get("crop_pct", 0.875)),
    )
    return Pretrained(model, preprocessing, source)


def checkpoint_pretrained(path: Path) -> Pretrained:
    """A cnnkit checkpoint as a backbone (its ``rebuild`` names the model and its arguments)."""
    from cnnkit.engine.checkpoint import load_checkpoint
    from cnnkit.plugins import registry

    saved = load_checkpoint(path)
    name, kwargs = saved["model"]["name"], dict(saved["model"]["kwargs"])
    from cnnkit.transfer.surgery import as_recorded

    model = as_recorded(registry("models").get(name).create(**kwargs), saved)
    load_into(model, saved["state_dict"], f"checkpoint '{path}'")
    norm = saved["normalization"]
    size = tuple(saved["input_size"])
    preprocessing = Preprocessing(input_size=size, mean=tuple(norm["mean"]), std=tuple(norm["std"]))
    return Pretrained(model, preprocessing, f"{name} from {path} ({saved.get('data', '?')})", (name, kwargs))
