"""Built-in weight initialisers (LeCun, Xavier/Glorot, He/Kaiming)."""

from functools import partial

from cnnkit import hookimpl
from cnnkit.contracts import InitializerRegister, Reference

HELP = {
    "lecun-normal": "LeCun normal: N(0, 1/fan_in), suited to tanh/SELU (LeCun et al. 1998)",
    "lecun-uniform": "LeCun uniform: U(-sqrt(3/fan_in), sqrt(3/fan_in))",
    "xavier-normal": "Xavier/Glorot normal: N(0, 2/(fan_in+fan_out)) (Glorot & Bengio 2010)",
    "xavier-uniform": "Xavier/Glorot uniform: U(-sqrt(6/(fan_in+fan_out)), +...)",
    "he-normal": "He/Kaiming normal: N(0, 2/fan_in), suited to ReLU (He et al. 2015)",
    "he-uniform": "He/Kaiming uniform: U(-sqrt(6/fan_in), sqrt(6/fan_in))",
    "orthogonal": "Orthogonal weights (Saxe et al. 2014), gain 1",
    "default": "PyTorch's own initialisation of each layer, applied again",
}


@hookimpl
def register_initializers(register: InitializerRegister) -> None:
    for name, help in HELP.items():
        register(name, partial(Reference("cnnkit.models.init:initializer"), name), help=help)
