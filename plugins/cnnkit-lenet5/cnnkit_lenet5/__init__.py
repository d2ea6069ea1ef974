"""cnnkit plugin registering LeNet-5. Importing it must not import torch: the model is named by a
reference, and its module is imported only when the model is built."""

from cnnkit import hookimpl
from cnnkit.contracts import ModelRegister

__version__ = "0.1.0"
CNNKIT_API = ">=1.0,<2"
"""The cnnkit plugin API this plugin is written for (``cnnkit.contracts.API_VERSION``)."""


@hookimpl
def register_models(register: ModelRegister) -> None:
    register(
        "lenet5",
        "cnnkit_lenet5.model:LeNet5",
        help="LeNet-5 (LeCun et al. 1998): tanh, average pooling, 32x32 input",
        input_size=(1, 32, 32),
    )
