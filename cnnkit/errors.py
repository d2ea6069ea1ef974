"""Exceptions that the CLI turns into one-line messages and exit codes."""


class CnnkitError(Exception):
    """A failure the user can act on; printed as one line, exit code 1."""

    exit_code = 1


class UsageError(CnnkitError):
    """Bad input (unknown name, missing path, bad data layout); exit code 2."""

    exit_code = 2


class PluginError(CnnkitError):
    """A plugin failed while ``CNNKIT_STRICT_PLUGINS`` makes plugin failures fatal."""
