"""``cnnkit plugins new``: write a ready plugin package for one kind of entry.

The package is ``NAME/`` with ``pyproject.toml`` (the ``cnnkit`` entry point), the module (its
``@hookimpl`` registration, ``CNNKIT_API`` and the entry's implementation), ``py.typed``, a test
using :mod:`cnnkit.testing` and a README. The files come from ``templates/`` (package data), with
``{{name}}`` placeholders filled in; every generated package passes ``mypy --strict``.
"""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cnnkit import __version__
from cnnkit.contracts._api import API_VERSION
from cnnkit.errors import UsageError


@dataclass(frozen=True)
class Kind:
    """What a generated package of one kind contains and how its README says to try it."""

    name: str
    impl: str
    """The implementation module's name (and its template's)."""
    summary: str
    try_it: str
    dependencies: tuple[str, ...] = ("torch>=2.4",)


KINDS = {
    kind.name: kind
    for kind in (
        Kind("model", "model", "the model '{entry}', a small VGG-style CNN",
             "cnnkit train --model {entry} --epochs 1"),
        Kind("augmentation", "augmentation", "the augmentation '{entry}', salt-and-pepper noise (per sample and batched)",
             'cnnkit train --augment "{entry}(amount=0.1)" --epochs 1'),
        Kind("initializer", "initializer", "the initializer '{entry}', He truncated normal (as Keras's he_normal)",
             "cnnkit train --init {entry} --epochs 1"),
        Kind("dataset", "dataset", "the dataset '{entry}', generated pictures of three shapes",
             "cnnkit train --data {entry} --epochs 1", ("torch>=2.4", "numpy>=1.24")),
        Kind("strategy", "strategy", "the strategy '{entry}', one process on the GPU with the most free memory",
             "cnnkit train --strategy {entry} --epochs 1"),
        Kind("command", "command", "the command 'cnnkit {entry}', per-channel mean and std of an image folder",
             "cnnkit {entry} path/to/images", ("click>=8.1", "numpy>=1.24", "pillow>=10.0")),
    )
}

DISTRIBUTION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
"""A valid distribution (project) name, as PEP 508 and pip take it."""
TAKEN_MODULES = {"cnnkit", "tests", "test", "torch", "torchvision", "numpy", "click", "pluggy", "PIL", "timm"}


@dataclass(frozen=True)
class Names:
    """The names derived from ``NAME``: the distribution (``cnnkit-foo``), its import package
    (``cnnkit_foo``), the entry-point and entry name (``foo``) and a class name (``Foo``)."""

    dist: str
    module: str
    entry: str
    cls: str


def names(name: str) -> Names:
    """The names for ``NAME``, or a one-line :class:`UsageError` saying what is wrong with it."""
    if not DISTRIBUTION.match(name):
        raise UsageError(f"'{name}' is not a valid package name: use letters, digits, '-', '_' and '.', starting and "
                         "ending with a letter or digit (e.g. cnnkit-mynet).")
    module = re.sub(r"[-_.]+", "_", name).lower()
    if not module.isidentifier() or keyword.iskeyword(module):
        raise UsageError(f"'{name}' gives the module name '{module}', which Python cannot import; start it with a "
                         f"letter (e.g. cnnkit-{name}).")
    if module in TAKEN_MODULES or module in sys.stdlib_module_names:
        raise UsageError(f"'{name}' gives the module name '{module}', which would shadow the module of that name; "
                         f"choose another (e.g. cnnkit-{name}).")
    entry = re.sub(r"[-_.]+", "-", name).lower()
    entry = entry.removeprefix("cnnkit-") or entry
    cls = "".join(part.capitalize() for part in entry.split("-"))
    return Names(name, module, entry, cls if cls[0].isalpha() else f"Plugin{cls}")


def api_range() -> str:
    """``>=1.0,<2`` for this cnnkit's ``API_VERSION`` 1.0: the versions compatible with it."""
    major = int(API_VERSION.split(".")[0])
    return f">={API_VERSION},<{major + 1}"


def render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.search(r"\{\{\w+\}\}", text)
    assert left is None, f"template placeholder {left.group()} has no value"
    return text


def files(kind: Kind, found: Names) -> dict[str, str]:
    """The package's files, path relative to its folder -> text."""
    templates = resources.files("cnnkit.scaffold") / "templates"
    release = ".".join(__version__.split(".")[:2])
    dependencies = (f"cnnkit>={release}", *kind.dependencies)
    values = {
        "dist": found.dist, "module": found.module, "entry": found.entry, "Class": found.cls, "kind": kind.name,
        "impl": kind.impl, "api_range": api_range(), "summary": kind.summary.format(entry=found.entry),
        "try": kind.try_it.format(entry=found.entry), "dependencies": ", ".join(f'"{d}"' for d in dependencies),
    }
    sources = {
        "pyproject.toml": templates / "common" / "pyproject.toml.tmpl",
        "README.md": templates / "common" / "README.md.tmpl",
        f"{found.module}/__init__.py": templates / kind.name / "__init__.py.tmpl",
        f"{found.module}/{kind.impl}.py": templates / kind.name / f"{kind.impl}.py.tmpl",
        f"tests/test_{found.module}.py": templates / kind.name / "test.py.tmpl",
    }
    made = {path: render(source.read_text(encoding="utf-8"), values) for path, source in sources.items()}
    made[f"{found.module}/py.typed"] = ""
    return made


@dataclass(frozen=True)
class Created:
    names: Names
    folder: Path
    files: list[Path]


def create(name: str, kind: str, parent: str | Path = ".") -> Created:
    """Write the package ``parent/NAME`` for ``kind``. Refuses (one line, :class:`UsageError`) a
    bad name or kind, a missing parent, and a folder that exists."""
    if kind not in KINDS:
        raise UsageError(f"unknown kind '{kind}'; choose one of {', '.join(KINDS)}.")
    found = names(name)
    base = Path(parent)
    if not base.is_dir():
        raise UsageError(f"--dir '{base}' is not a folder; create it first, or leave --dir out to use the current one.")
    folder = base / found.dist
    try:
        folder.mkdir()
    except FileExistsError:
        raise UsageError(f"'{folder}' already exists; cnnkit plugins new never overwrites: choose another name or "
                         "--dir, or remove it.") from None
    written = []
    for relative, text in files(KINDS[kind], found).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return Created(found, folder, written)
