"""Run the installed ``cnnkit`` command in-process, plugins loaded afresh for each call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cnnkit.testing import CliResult, run_cli


@pytest.fixture
def cnnkit() -> Callable[..., CliResult]:
    """The installed ``cnnkit`` in-process, plugins loaded afresh for each call."""
    return run_cli
