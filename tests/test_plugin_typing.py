"""``mypy --strict`` checks plugins against cnnkit.contracts: every package under plugins/ passes, and
a plugin whose factory has the wrong signature fails at the line that registers it (issue 16)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = [ROOT / "cnnkit" / "contracts", ROOT / "cnnkit" / "hookspecs.py", ROOT / "cnnkit" / "builtins"]
ERROR = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): error: (?P<message>.*)$", re.MULTILINE)
CONFIG = """\
[mypy]
strict = True
cache_dir = {cache}

[mypy-cnnkit,cnnkit.*]
follow_imports = silent
"""
"""cnnkit is checked as a plugin author's mypy sees an installed cnnkit (py.typed): its own modules
are analysed for their types, their errors not reported; the files named on the command line are."""

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                                reason="mypy is not installed (pip install -e '.[dev]' installs it)")


def plugin_packages() -> list[Path]:
    """The import package of every plugin distribution under plugins/ (from its pyproject.toml)."""
    found = []
    for pyproject in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        setuptools = tomllib.loads(pyproject.read_text()).get("tool", {}).get("setuptools", {})
        names = setuptools.get("packages") or [p.parent.name for p in pyproject.parent.glob("*/__init__.py")
                                                if p.parent.name != "tests"]
        found += [pyproject.parent / name for name in names if "." not in name]
    return found


PACKAGES = plugin_packages()

WRONG = {
    "model": ("ModelRegister", """
        from torch import nn

        def build(num_classes: int) -> nn.Module:
            return nn.Linear(4, num_classes)

        @hookimpl
        def register_models(register: ModelRegister) -> None:
            register("bad-net", build, input_size=(1, 2, 2))
    """, 'Argument 2 to "__call__" of "ModelRegister" has incompatible type "Callable[[int], Module]"'),
    "dataset": ("DatasetRegister", """
        from cnnkit.contracts import DataSplits

        def read(path: str) -> DataSplits:
            raise NotImplementedError

        @hookimpl
        def register_datasets(register: DatasetRegister) -> None:
            register("bad-data", read, classes=3)
    """, 'Argument 2 to "__call__" of "DatasetRegister" has incompatible type "Callable[[str], DataSplits]"'),
    "result": ("DatasetRegister", """
        from cnnkit.contracts import DataRequest

        def read(request: DataRequest) -> dict[str, int]:
            return {}

        @hookimpl
        def register_datasets(register: DatasetRegister) -> None:
            register("bad-result", read, classes=3)
    """, 'Argument 2 to "__call__" of "DatasetRegister" has incompatible type "Callable[[DataRequest], dict[str, int]]"'),
    "metadata": ("StrategyRegister", """
        @hookimpl
        def register_strategies(register: StrategyRegister) -> None:
            register("bad-strategy", "pkg.module:Strategy", distributd=True)
    """, 'Unexpected keyword argument "distributd" for "__call__" of "StrategyRegister"'),
}


def wrong_source(kind: str) -> str:
    protocol, body, _ = WRONG[kind]
    return f"from cnnkit import hookimpl\nfrom cnnkit.contracts import {protocol}\n" + textwrap.dedent(body)


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory) -> dict[Path, list[tuple[int, str]]]:
    """One ``mypy --strict`` run over the contract, every plugin package and the wrong plugins."""
    folder = tmp_path_factory.mktemp("typing")
    config = folder / "mypy.ini"
    config.write_text(CONFIG.format(cache=ROOT / ".mypy_cache"))
    wrong = []
    for kind in WRONG:
        path = folder / f"cnnkit_wrong_{kind}" / "__init__.py"
        path.parent.mkdir()
        path.write_text(wrong_source(kind))
        wrong.append(path.parent)
    targets = [*CONTRACT, *PACKAGES, *wrong]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config), *map(str, targets)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    errors: dict[Path, list[tuple[int, str]]] = {}
    for match in ERROR.finditer(proc.stdout):
        path = Path(match["path"])
        errors.setdefault((path if path.is_absolute() else ROOT / path).resolve(), []).append(
            (int(match["line"]), match["message"]))
    return errors


def errors_under(errors: dict[Path, list[tuple[int, str]]], folder: Path) -> list[str]:
    return [f"{path}:{line}: {message}" for path, found in errors.items() if path.is_relative_to(folder.resolve())
            for line, message in found]


def test_every_plugin_package_is_found():
    assert ROOT / "plugins" / "cnnkit-lenet5" / "cnnkit_lenet5" in PACKAGES
    assert all((package / "__init__.py").is_file() for package in PACKAGES)


@pytest.mark.slow
def test_the_contract_and_the_builtin_plugins_pass_mypy_strict(mypy_errors):
    assert [e for folder in CONTRACT for e in errors_under(mypy_errors, folder)] == []


@pytest.mark.parametrize("package", PACKAGES, ids=[p.parent.name for p in PACKAGES])
@pytest.mark.slow
def test_each_plugin_package_passes_mypy_strict(mypy_errors, package):
    assert errors_under(mypy_errors, package) == []


@pytest.mark.parametrize("kind", sorted(WRONG))
@pytest.mark.slow
def test_a_plugin_that_breaks_the_contract_fails_at_the_line_that_registers(mypy_errors, kind):
    expected = WRONG[kind][2]
    [found] = [f for p, f in mypy_errors.items() if p.parent.name == f"cnnkit_wrong_{kind}"]
    lines = wrong_source(kind).splitlines()
    register_line = next(number for number, line in enumerate(lines, 1) if line.strip().startswith("register("))
    assert [line for line, _ in found] == [register_line], found
    assert expected in found[0][1]
