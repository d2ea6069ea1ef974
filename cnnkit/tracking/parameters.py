"""What a tracker records about a run besides its metrics: the options and what the run found."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cnnkit.contracts._callbacks import RunStarted


def without_password(uri: str) -> str:
    """``uri`` with the password of its ``user:password@`` part replaced by ``***`` (a database
    URI such as ``postgresql://user:secret@host/db`` holds one); other text as it is."""
    try:
        parts = urlsplit(uri)
        has_password = parts.password is not None
    except ValueError:
        return uri
    if not has_password:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def run_parameters(event: RunStarted) -> dict[str, Any]:
    """The options as ``config.json`` records them (but ``log_uri`` without its password: a
    tracker need not learn it), then the model's parameter counts, the number of classes and the
    images per split (``train_images``, ``val_images``, ``test_images``)."""
    options = dict(event.options)
    if isinstance(options.get("log_uri"), str):
        options["log_uri"] = without_password(options["log_uri"])
    found: dict[str, Any] = {
        "parameters": event.parameters,
        "trainable_parameters": event.trainable_parameters,
        "classes": len(event.classes),
    }
    found.update({f"{split}_images": count for split, count in event.data_sizes.items()})
    return {**options, **found}
