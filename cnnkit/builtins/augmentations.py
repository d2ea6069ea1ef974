"""Built-in batched augmentations (applied to whole batches on the training device)."""

from cnnkit import hookimpl


def _lazy(attribute: str):
    def factory(**params):
        from cnnkit.data import augment

        return getattr(augment, attribute)(**params)

    return factory


@hookimpl
def register_augmentations(register):
    register("random-shift", _lazy("random_shift"), help="Translate by up to 1/8 of the image size (edge padding)")
    register("hflip", _lazy("horizontal_flip"), help="Mirror left-right with probability 0.5")
    register("gaussian-noise", _lazy("gaussian_noise"), help="Add Gaussian noise with std 0.05 (on the 0..1 scale)")
