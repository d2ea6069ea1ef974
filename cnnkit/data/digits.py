"""The UCI handwritten digits shipped with cnnkit (see ``scripts/make_digits.py``).

1,797 8x8 grayscale images of the digits 0-9 from 43 writers (Alpaydin & Kaynak, UCI Machine
Learning Repository, 1998, CC BY 4.0), in the copy bundled by scikit-learn. The train/val/test
split is fixed and stored in the file; images are served upscaled to the model's input size.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from cnnkit.contracts._data import DataRequest
from cnnkit.data.splits import DataSplits, Split

CLASSES = [str(d) for d in range(10)]
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def load_digits(request: DataRequest | None = None) -> DataSplits:
    """Digits with its fixed split (``val_split`` and ``seed`` do not apply), at the requested
    size and channels (default 28x28 grayscale)."""
    request = request or DataRequest(image_size=(28, 28), channels=1)
    image_size, channels = request.image_size, request.channels
    with resources.files("cnnkit.data").joinpath("digits.npz").open("rb") as f:
        arrays = np.load(f)
        images, labels, split = arrays["images"], arrays["labels"], arrays["split"]
    x = torch.from_numpy(images).float().unsqueeze(1)
    x = F.interpolate(x, size=tuple(image_size), mode="bilinear", align_corners=False)
    x = x.round_().clamp_(0, 255).to(torch.uint8).expand(-1, channels, -1, -1).contiguous()
    if request.crop_fraction != 1:  # the centre share evaluation reads, as files and stored arrays are read
        from cnnkit.data.images import fit_array

        x = torch.from_numpy(np.stack([fit_array(image, image_size, channels, request.crop_fraction, request.interpolation)
                                       for image in x.numpy()]))
    everything = Split(x, torch.from_numpy(labels.astype(np.int64)))
    parts = {name: everything.subset(torch.from_numpy(split == code)) for name, code in SPLIT_CODES.items()}
    return DataSplits(parts["train"], parts["val"], parts["test"], CLASSES, "digits (UCI, via scikit-learn)")
