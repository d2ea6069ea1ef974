"""Built-in CLI commands, registered through the same hook third-party commands use. Each is a
reference to its click command, imported only when that command runs."""

from functools import partial

from cnnkit import hookimpl
from cnnkit.contracts import CommandRegister, Reference

COMMANDS = {
    "train": ("cnnkit.cli.train:train", "Train a model on a dataset"),
    "finetune": ("cnnkit.cli.finetune:finetune", "Fine-tune a pretrained backbone (transfer learning)"),
    "evaluate": ("cnnkit.cli.predict_command:evaluate",
                 "Measure a checkpoint: accuracy, per-class scores, confusion matrix, top losses"),
    "predict": ("cnnkit.cli.predict_command:predict", "Class probabilities of image files from a checkpoint"),
    "export": ("cnnkit.cli.predict_command:export",
               "Export a checkpoint to ONNX or TorchScript (checked against PyTorch), or safetensors"),
    "plot": ("cnnkit.cli.predict_command:plot", "Redraw a run's curves, or compare several runs"),
    "plugins": ("cnnkit.cli.plugins_command:plugins", "List installed plugins and what each registers"),
    "summary": ("cnnkit.cli.summary_command:summary", "Show a model's layers, output shapes, parameters and cost"),
    "augment": ("cnnkit.cli.augment_command:augment", "List augmentations; preview what a spec does (augment preview)"),
    "data": ("cnnkit.cli.data_command:data", "Inspect a dataset before training (data check PATH)"),
    "runs": ("cnnkit.cli.runs_command:runs", "List the runs under a folder: model, data, epochs, accuracy, time and status"),
}
LISTED = ("models", "datasets", "augmentations", "initializers", "strategies", "callbacks")


@hookimpl
def register_commands(register: CommandRegister) -> None:
    for name, (target, help) in COMMANDS.items():
        register(name, target, help=help)
    for kind in LISTED:
        register(kind, partial(Reference("cnnkit.cli.listing:list_command"), kind), help=f"List registered {kind}")
