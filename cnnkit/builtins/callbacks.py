"""Built-in run callbacks: experiment trackers, chosen with ``--log``. Each is a reference to its
class, imported only when a run logs to it (the class imports its tracker's package)."""

from cnnkit import hookimpl
from cnnkit.contracts import CallbackRegister


@hookimpl
def register_callbacks(register: CallbackRegister) -> None:
    register("tensorboard", "cnnkit.tracking.tensorboard:TensorBoardCallback", requires="cnnkit[tensorboard]",
             help="TensorBoard event files in the run directory's tensorboard/ folder: scalars, hyper-parameters, figures")
    register("mlflow", "cnnkit.tracking.mlflow:MLflowCallback", requires="cnnkit[mlflow]",
             help="An MLflow run (--log-uri, e.g. sqlite:///mlflow.db): params, metrics, the run's files, the best model")
