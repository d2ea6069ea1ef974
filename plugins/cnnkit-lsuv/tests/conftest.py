"""Run the installed ``cnnkit`` command in-process, plugins loaded afresh for each call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cnnkit(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    from cnnkit.cli import main
    from cnnkit.plugins import reset_host

    def run(*args: str) -> Result:
        reset_host()
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        finally:
            reset_host()
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
