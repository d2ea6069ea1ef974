"""``cnnkit train``: parse options (config file first, flags on top) and hand them to the recipe."""

from __future__ import annotations

from cnnkit.cli.training import run_training, training_command

train = training_command(
    "train", run_training,
    help="Train a model on a dataset and write a run directory.\n\n"
    "With no options it trains mnist-cnn on the handwritten digits cnnkit ships.",
)
