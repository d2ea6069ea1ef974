"""Class probabilities for image files, read as the checkpoint's model was trained to see them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnkit.data.folder import IMAGE_EXTENSIONS, images_in
from cnnkit.data.images import UnreadableImage, decode
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


def predict(trained: Trained, paths: list[str], topk: int, batch_size: int = 64, cam: Path | None = None) -> list[Prediction]:
    channels, height, width = trained.input_size
    results, pending = [], []
    for path in image_files(paths):
        try:
            pixels = decode(path, (height, width), channels, trained.crop_fraction, trained.interpolation)
            result = Prediction(str(path))
            pending.append((result, torch.from_numpy(pixels)))
        except UnreadableImage as exc:
            result = Prediction(str(path), error=str(exc))
        results.append(result)
    k = min(topk, len(trained.classes))
    with torch.inference_mode():
        for first in range(0, len(pending), batch_size):
            chunk = pending[first:first + batch_size]
            probabilities = trained.model(trained.normalise(torch.stack([p for _, p in chunk]))).softmax(1)
            values, indices = probabilities.topk(k, dim=1)
            for (result, _), row_values, row_indices in zip(chunk, values.tolist(), indices.tolist()):
                result.top = [(trained.classes[i], v) for i, v in zip(row_indices, row_values)]
    if cam is not None and pending:
        from cnnkit.inference.cam import write_cams

        taken: set[Path] = set()
        for first in range(0, len(pending), batch_size):
            chunk = pending[first:first + batch_size]
            items = [(r.file, image, trained.classes.index(r.top[0][0]), r.top[0][1]) for r, image in chunk]
            for (result, _), path in zip(chunk, write_cams(trained, items, cam, taken)):
                result.cam = str(path)
    return results


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
