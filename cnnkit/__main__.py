"""``python -m cnnkit``: the same CLI as the ``cnnkit`` script (torchrun launches modules)."""

from cnnkit.cli import main

if __name__ == "__main__":
    main()
