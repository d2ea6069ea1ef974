"""The range test's curve as fastai's ``plot_lr_find`` draws it: smoothed loss against the rate
on a log axis, the last 5 points left off, the suggestion marked."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from cnnkit_lrfind.finder import SKIP_END, Curve, Suggestion


def plot(curve: Curve, suggestion: Suggestion, path: Path, title: str = "") -> None:
    """Write the plot to ``path`` as a PNG (whole or not at all: written beside it, then renamed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve.lrs[:-SKIP_END], curve.losses[:-SKIP_END])
    ax.plot(*suggestion.point, "o", color="tab:red", label=f"{suggestion.rule}: {suggestion.lr:.2e}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="loss (smoothed)", title=title or "Learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
