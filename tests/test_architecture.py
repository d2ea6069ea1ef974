"""docs/architecture.md is true of the code: every module in one layer, imports only down, no cycles, small pieces.

Every import counts: at module level, inside functions and under ``if TYPE_CHECKING:``. The checks are functions of
a root folder holding ``cnnkit/``, so each is also pointed at a small planted tree to show that it fails."""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
from pathlib import Path

import pytest
from radon.complexity import cc_visit_ast

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_COMPLEXITY = 400, 60, 15

Layer = tuple[int, str]  # (rank, name): an import may go to a lower rank, or stay in its own layer
Table = list[tuple[Layer, list[str]]]


def layer_table(doc: Path) -> Table:
    """The doc's fenced ```layers block: ``RANK NAME PATH...`` a line; a PATH ending in / is a package, others are globs."""
    block = re.search(r"^```layers\n(.*?)^```", doc.read_text(), re.S | re.M)
    assert block, f"{doc} has no ```layers block"
    rows = [line.split() for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [((int(rank), name), patterns) for rank, name, *patterns in rows]


TABLE = layer_table(ROOT / "docs" / "architecture.md")


def modules(root: Path) -> dict[str, str]:
    """Every module under root/cnnkit: dotted name -> path relative to root."""
    rels = [path.relative_to(root) for path in sorted((root / "cnnkit").rglob("*.py"))]
    return {".".join(rel.parent.parts if rel.name == "__init__.py" else rel.with_suffix("").parts): rel.as_posix() for rel in rels}


@functools.cache
def parse(path: Path) -> tuple[str, ast.Module]:
    """A file's source and tree, parsed once per test run (parsing is most of the time; the files do not change)."""
    return (source := path.read_text()), ast.parse(source, str(path))


def placement(root: Path, table: Table) -> tuple[dict[str, Layer], list[str]]:
    """Each module's layer, and a problem for each module in no layer or in several and each path that names no file."""
    layer_of, problems, used = {}, [], set[str]()
    for module, rel in modules(root).items():
        hits = [(layer, pattern) for layer, patterns in table for pattern in patterns
                if (rel.startswith(pattern) if pattern.endswith("/") else fnmatch.fnmatchcase(rel, pattern))]
        used.update(pattern for _, pattern in hits)
        if len(hits) == 1:
            layer_of[module] = hits[0][0]
        else:
            named = ", ".join(name for (_, name), _ in hits) or "none"
            problems.append(f"{rel} must be in exactly one layer of docs/architecture.md, it is in: {named}")
    return layer_of, problems + [f"docs/architecture.md places {pattern} in layer {name}, but no file matches it"
                                 for (_, name), patterns in table for pattern in patterns if pattern not in used]


def _targets(module: str, rel: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement imports (``from a import b`` names a.b, which may be an attribute of a)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module.split(".") if rel.endswith("__init__.py") else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{alias.name}" for alias in node.names]


def imports(root: Path) -> list[tuple[str, int, str, str]]:
    """Every import of a cnnkit module by another: (importing file, line, importing module, imported module)."""
    known, edges = modules(root), []
    for module, rel in known.items():
        for node in [node for node in ast.walk(parse(root / rel)[1]) if isinstance(node, (ast.Import, ast.ImportFrom))]:
            for target in _targets(module, rel, node):
                while target and target not in known:  # an attribute, or a module outside cnnkit
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.append((rel, node.lineno, module, target))
    return list(dict.fromkeys(edges))  # `from a import b, c` is one import of a


def back_arrows(root: Path, table: Table) -> list[str]:
    """Imports that go up the stack, or sideways between two layers of the same rank."""
    layer_of, problems = placement(root, table)[0], []
    for rel, line, module, target in imports(root):
        here, there = layer_of.get(module), layer_of.get(target)
        if here and there and there != here and there[0] >= here[0]:
            problems.append(f"{rel}:{line} imports {target}: layer {here[0]} {here[1]} may not import layer {there[0]} {there[1]}")
    return problems


def _reached_from(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Each module reachable from start by one import or more -> the module it is first reached from (breadth first)."""
    parent, queue = {}, [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph.get(node, ())):
            if target not in parent:
                parent[target] = node
                queue.append(target)
    return parent


def cycles(root: Path) -> list[str]:
    """One problem per knot of modules that import each other, naming a shortest cycle through its first module."""
    graph: dict[str, set[str]] = {}
    for _, _, module, target in imports(root):
        graph.setdefault(module, set()).add(target)
    reached = {module: _reached_from(graph, module) for module in graph}
    problems, seen = [], set()
    for module in sorted(module for module in graph if module in reached[module]):
        if module not in seen:
            seen.update(knot := sorted(other for other in reached[module] if module in reached.get(other, {})))
            path = [module]  # back from the module's first importer to the module
            while (node := reached[module][path[-1]]) != module:
                path.append(node)
            more = f" (the knot holds {len(knot)} modules: {', '.join(knot)})" if len(knot) > len(path) else ""
            problems.append(f"import cycle {' -> '.join([module, *reversed(path)])}{more}")
    return problems


def oversized(root: Path) -> list[str]:
    """Modules over 400 lines, functions over 60 lines, functions (closures and methods too) of complexity over 15."""
    problems = []
    for rel in modules(root).values():
        source, tree = parse(root / rel)
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            problems.append(f"{rel}: {lines} lines, at most {MAX_MODULE_LINES}")
        defs = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        problems += [f"{rel}:{node.lineno} {node.name}: {length} lines, at most {MAX_FUNCTION_LINES}"
                     for node in defs if (length := (node.end_lineno or 0) - node.lineno + 1) > MAX_FUNCTION_LINES]
        functions = [f for block in cc_visit_ast(tree) if hasattr(block, "closures") for f in (block, *block.closures)]  # not classes
        problems += [f"{rel}:{f.lineno} {f.fullname}: complexity {f.complexity}, at most {MAX_COMPLEXITY}"
                     for f in functions if f.complexity > MAX_COMPLEXITY]
    return problems


@pytest.mark.parametrize("check", [
    lambda: placement(ROOT, TABLE)[1], lambda: back_arrows(ROOT, TABLE), lambda: cycles(ROOT), lambda: oversized(ROOT),
], ids=["every-module-in-one-layer", "imports-point-down", "no-import-cycles", "small-modules-and-functions"])
def test_the_code_keeps_the_rules_of_docs_architecture(check):
    problems = check()
    assert not problems, "\n".join(problems)


def plant(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_a_module_in_no_layer_or_two_and_a_path_that_names_no_file_are_named(tmp_path):
    plant(tmp_path, {"cnnkit/__init__.py": "", "cnnkit/errors.py": "", "cnnkit/newpkg/__init__.py": ""})
    table: Table = [((0, "base"), ["cnnkit/__init__.py", "cnnkit/errors.py"]), ((1, "plugins"), ["cnnkit/errors.py", "cnnkit/gone/"])]
    where = "must be in exactly one layer of docs/architecture.md, it is in:"
    assert placement(tmp_path, table)[1] == [f"cnnkit/errors.py {where} base, plugins", f"cnnkit/newpkg/__init__.py {where} none",
                                         "docs/architecture.md places cnnkit/gone/ in layer plugins, but no file matches it"]
    assert f"cnnkit/newpkg/__init__.py {where} none" in placement(tmp_path, TABLE)[1]


def test_an_import_up_the_stack_or_between_siblings_is_named(tmp_path):
    plant(tmp_path, {
        "cnnkit/engine/__init__.py": "", "cnnkit/augment/ops.py": "", "cnnkit/cli/train.py": "",
        "cnnkit/engine/loop.py": "import torch\nfrom cnnkit.data import splits\n\ndef fit():\n    from ..recipe import plan\n",
        "cnnkit/data/splits.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cnnkit.cli.train import train\n",
        "cnnkit/recipe/plan.py": "from cnnkit.engine.loop import fit\nfrom cnnkit.contracts._data import DataRequest\n",
        "cnnkit/models/net.py": "import cnnkit.augment.ops\n", "cnnkit/contracts/__init__.py": "from ._data import DataRequest\n",
        "cnnkit/contracts/_data.py": "from cnnkit.contracts import DataRequest\n",
    })
    assert back_arrows(tmp_path, TABLE) == [
        "cnnkit/contracts/_data.py:1 imports cnnkit.contracts: layer 0 base may not import layer 11 top",
        "cnnkit/data/splits.py:3 imports cnnkit.cli.train: layer 3 data may not import layer 10 front",
        "cnnkit/engine/loop.py:5 imports cnnkit.recipe.plan: layer 5 engine may not import layer 7 recipe",
        "cnnkit/models/net.py:1 imports cnnkit.augment.ops: layer 4 models may not import layer 4 augment",
    ]


def test_an_import_cycle_is_named(tmp_path):
    plant(tmp_path, {
        "cnnkit/data/__init__.py": "", "cnnkit/data/a.py": "from cnnkit.data import b\n",
        "cnnkit/data/b.py": "def load():\n    from .c import x\n", "cnnkit/data/c.py": "from . import a\nfrom cnnkit.data.d import y\n",
        "cnnkit/data/d.py": "import cnnkit.data.b\n", "cnnkit/data/e.py": "from cnnkit.data import a\n",
    })
    assert cycles(tmp_path) == ["import cycle cnnkit.data.a -> cnnkit.data.b -> cnnkit.data.c -> cnnkit.data.a"
                            " (the knot holds 4 modules: cnnkit.data.a, cnnkit.data.b, cnnkit.data.c, cnnkit.data.d)"]


def test_a_long_module_a_long_function_and_a_knotty_function_are_named(tmp_path):
    long, fine = "def long():\n" + "    x = 1\n" * 60, "def fine():\n" + "    x = 1\n" * 59
    knotty = "def knotty(x):\n" + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(15))
    plant(tmp_path, {"cnnkit/big.py": long + knotty + fine + "# padding\n" * 249, "cnnkit/small.py": fine})
    assert oversized(tmp_path) == ["cnnkit/big.py: 401 lines, at most 400", "cnnkit/big.py:1 long: 61 lines, at most 60",
                               "cnnkit/big.py:62 knotty: complexity 16, at most 15"]
