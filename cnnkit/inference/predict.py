"""Class probabilities for image files, read as the checkpoint's model was trained to see them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnkit.data.folder import images_in
from cnnkit.data.images import UnreadableImage, decode, run_reads_as_weights
from cnnkit.data.listing import IMAGE_EXTENSIONS
from cnnkit.errors import UsageError
from cnnkit.inference.model import Trained


@dataclass
class Prediction:
    file: str
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str = ""
    cam: str = ""


def image_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files += images_in(path)[0]
        elif path.exists() or path.is_symlink():
            files.append(path)
        else:
            raise UsageError(f"'{given}' does not exist; pass image files or folders of images ({', '.join(IMAGE_EXTENSIONS)}).")
    if not files:
        raise UsageError(f"No images found in {', '.join(paths)} (looked for {', '.join(IMAGE_EXTENSIONS)}).")
    return list(dict.fromkeys(files))  # a file named twice (itself and in its folder) once


def predict(trained: Trained, paths: list[str], topk: int, batch_size: int = 64, cam: Path | None = None,
            cam_layer: str = "", tta: str = "none") -> list[Prediction]:
    """The ``topk`` classes of each image; with ``tta``, probabilities averaged over its views
    (:mod:`cnnkit.inference.tta`), heat maps taken on the centre view."""
    from cnnkit.inference.tta import averaged_probabilities, centre_view, read_size

    size, crop_fraction = read_size(trained, tta)
    layer = prepare_cams(trained, cam, cam_layer) if cam is not None else ""
    as_weights = run_reads_as_weights(trained.saved.get("config", {}))
    results, pending = [], []
    for path in image_files(paths):
        try:
            pixels = decode(path, size, trained.input_size[0], crop_fraction, trained.interpolation, as_weights)
            result = Prediction(str(path))
            pending.append((result, torch.from_numpy(pixels)))
        except UnreadableImage as exc:
            result = Prediction(str(path), error=str(exc))
        results.append(result)
    k = min(topk, len(trained.classes))
    with torch.inference_mode():
        for first in range(0, len(pending), batch_size):
            chunk = pending[first:first + batch_size]
            probabilities = averaged_probabilities(trained, torch.stack([p for _, p in chunk]), tta)
            values, indices = probabilities.topk(k, dim=1)
            for (result, _), row_values, row_indices in zip(chunk, values.tolist(), indices.tolist()):
                result.top = [(trained.classes[i], v) for i, v in zip(row_indices, row_values)]
    if cam is not None and pending:
        save_cams(trained, [(result, centre_view(image, trained)) for result, image in pending], cam, layer, batch_size)
    return results


def prepare_cams(trained: Trained, cam: Path, name: str) -> str:
    """Check the heat-map folder and the layer before any image is read; the layer's name."""
    from cnnkit.console import note
    from cnnkit.inference.cam import cam_layer

    check_output_folder(cam, trained, "--cam")
    layer = cam_layer(trained.model, torch.zeros(1, *trained.input_size), name)
    how = "chosen with --cam-layer" if name else "the last feature map before the classifier; --cam-layer NAME for another"
    note(f"heat maps taken at layer '{layer}' ({how}).")
    return layer


def save_cams(trained: Trained, pending: list, cam: Path, layer: str, batch_size: int) -> None:
    """An overlay per predicted image, named after it; heat maps replaced in ``cam`` are counted."""
    from cnnkit.console import note
    from cnnkit.inference.cam import cam_targets, write_cams

    targets = cam_targets(cam, [result.file for result, _ in pending], set())
    replaced = sum(target.exists() for target in targets)
    for first in range(0, len(pending), batch_size):
        chunk = pending[first:first + batch_size]
        items = [(r.file, image, trained.classes.index(r.top[0][0]), r.top[0][1]) for r, image in chunk]
        write_cams(trained, items, targets[first:first + batch_size], layer)
        for (result, _), target in zip(chunk, targets[first:first + batch_size]):
            result.cam = str(target)
    if replaced:
        note(f"replaced {replaced} heat map(s) of the same name(s) in '{cam}'.")


def training_folder(trained: Trained) -> Path | None:
    """The image folder the checkpoint was trained on, resolved, when it is one and still there."""
    from cnnkit.engine.checkpoint import data_folder

    return data_folder(str(trained.saved.get("config", {}).get("data") or ""))


def class_layout(folder: Path, classes: list[str]) -> Path | None:
    """The nearest of ``folder`` and its parents that holds folders of images named after two or
    more of ``classes`` (the layout of the training data), if any."""
    names = set(classes)
    for candidate in [folder, *folder.parents]:
        try:
            matching = [entry.path for entry in os.scandir(candidate) if entry.name in names and entry.is_dir()]
        except OSError:
            continue
        if len(matching) >= min(2, len(names)) and any(images_in_folder(Path(m)) for m in matching):
            return candidate
    return None


def images_in_folder(folder: Path) -> bool:
    try:
        return any(Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS for entry in os.scandir(folder) if entry.is_file())
    except OSError:
        return False


def check_output_folder(folder: Path, trained: Trained, option: str) -> None:
    """Outputs (heat maps, reports) never go where they would be read as training images."""
    from cnnkit.engine.checkpoint import refuse_inside_data

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} '{folder}' is a file; name a folder for the {'heat maps' if option == '--cam' else 'report'}.")
    refuse_inside_data(folder, training_folder(trained), option, "the training data of this checkpoint")
    real = folder.expanduser().resolve()
    layout = class_layout(real, trained.classes)
    if layout is not None:
        raise UsageError(f"{option} '{folder}' is inside '{layout}', which holds image folders named after this model's "
                         "classes: images written there would be read as images of the data. Choose a folder outside it.")


def format_predictions(results: list[Prediction], form: str) -> str:
    import csv
    import io
    import json

    if form == "json":
        return json.dumps([{"file": r.file, **({"error": r.error} if r.error else
                           {"predictions": [{"class": c, "probability": round(p, 6)} for c, p in r.top]}),
                            **({"cam": r.cam} if r.cam else {})} for r in results], indent=2)
    if form == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["file", "rank", "class", "probability", "error"])
        for r in results:
            rows = [[r.file, rank, c, f"{p:.6f}", ""] for rank, (c, p) in enumerate(r.top, start=1)] or [[r.file, "", "", "", r.error]]
            writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    width = max((len(r.file) for r in results), default=4)
    lines = [f"{'FILE'.ljust(width)}  PREDICTIONS"]
    for r in results:
        shown = "  ".join(f"{c} {100 * p:.1f}%" for c, p in r.top) if not r.error else f"unreadable: {r.error}"
        lines.append(f"{r.file.ljust(width)}  {shown}")
    return "\n".join(lines)
