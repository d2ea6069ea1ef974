"""Built-in CLI commands, registered through the same hook third-party commands use."""

from cnnkit import hookimpl


def _train():
    from cnnkit.cli.train import train

    return train


def _finetune():
    from cnnkit.cli.finetune import finetune

    return finetune


def _predict():
    from cnnkit.cli.predict_command import predict

    return predict


def _evaluate():
    from cnnkit.cli.predict_command import evaluate

    return evaluate


def _export():
    from cnnkit.cli.predict_command import export

    return export


def _plot():
    from cnnkit.cli.predict_command import plot

    return plot


def _plugins():
    from cnnkit.cli.plugins_command import plugins

    return plugins


def _summary():
    from cnnkit.cli.summary_command import summary

    return summary


def _data():
    from cnnkit.cli.data_command import data

    return data


def _augment():
    from cnnkit.cli.augment_command import augment

    return augment


def _lister(kind: str):
    def factory():
        from cnnkit.cli.listing import list_command

        return list_command(kind)

    return factory


@hookimpl
def register_commands(register):
    register("train", _train, help="Train a model on a dataset")
    register("finetune", _finetune, help="Fine-tune a pretrained backbone (transfer learning)")
    register("evaluate", _evaluate, help="Measure a checkpoint: accuracy, per-class scores, confusion matrix, top losses")
    register("predict", _predict, help="Class probabilities of image files from a checkpoint")
    register("export", _export, help="Export a checkpoint to ONNX or TorchScript (checked against PyTorch), or safetensors")
    register("plot", _plot, help="Redraw a run's curves, or compare several runs")
    register("plugins", _plugins, help="List installed plugins and what each registers")
    register("summary", _summary, help="Show a model's layers, output shapes, parameters and cost")
    register("augment", _augment, help="List augmentations; preview what a spec does (augment preview)")
    register("data", _data, help="Inspect a dataset before training (data check PATH)")
    for kind in ("models", "datasets", "augmentations", "initializers", "strategies"):
        register(kind, _lister(kind), help=f"List registered {kind}")
