"""docs/plugins.md is true (issue 16, deliverable 7).

- The hook reference is checked against the code: every hook of ``cnnkit/hookspecs.py``, every
  name ``cnnkit.contracts`` exports, every member of its protocols, every field of its dataclasses
  and every metadata key of each kind must be documented in a ```python block of the reference,
  with the signature, annotation and default the code has (compared as parsed Python, so line
  breaks and comments are free); the doc may not document a contract name the code lacks. The
  signatures of ``cnnkit.testing`` in the testing section are checked the same way.
- The tutorial is followed literally: every block titled ``title="PATH"`` is written to PATH in
  an empty folder, and the ```bash blocks of the tutorial, testing and template sections run
  there in order (``pip install -e DIR`` installs into a folder on PYTHONPATH), each output block
  (```text) that follows being checked against what the commands printed.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest

import cnnkit.contracts as contracts
import cnnkit.testing as testing
from cnnkit import hookspecs, plugin_selection, plugins

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"
REFERENCE = "Hook reference"
TESTING = "Testing a plugin"
RUN = ("A plugin in ten minutes", "Testing a plugin", "Starting from a template")
"""The sections whose ```bash blocks are run, in this order (as they appear in the doc)."""
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)(?P<info>[^\n]*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
METADATA = re.compile(r"^- `(?P<name>\w+): (?P<type>[^`]+?) = (?P<default>[^`]+)`")


@dataclass
class Block:
    lang: str
    title: str | None
    text: str
    line: int
    section: str
    """The level-2 heading the block is under."""
    subsection: str
    """The level-3 heading the block is under ("" before the first)."""


@dataclass
class Doc:
    blocks: list[Block]
    sections: dict[str, str]
    """Level-2 heading -> its text (without the fenced blocks' contents)."""
    subsections: dict[str, str]
    """Level-3 heading -> its text, fenced blocks included."""


def parse(text: str) -> Doc:
    blocks: list[Block] = []
    sections: dict[str, list[str]] = {}
    subsections: dict[str, list[str]] = {}
    section = subsection = ""
    fence: tuple[str, str | None, int, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if fence is not None:
            if line.startswith("```"):
                lang, title, start, body = fence
                blocks.append(Block(lang, title, "\n".join(body) + "\n", start, section, subsection))
                fence = None
            else:
                fence[3].append(line)
            if subsection:
                subsections[subsection].append(line)
            continue
        opened = FENCE.match(line)
        if opened:
            title = TITLE.search(opened["info"])
            fence = (opened["lang"], title["title"] if title else None, number, [])
        elif line.startswith("## "):
            section, subsection = line[3:].strip(), ""
            sections[section] = []
            continue
        elif line.startswith("### "):
            subsection = line[4:].strip().strip("`")
            subsections[subsection] = []
            continue
        sections.setdefault(section, []).append(line)
        if subsection:
            subsections[subsection].append(line)
    assert fence is None, f"docs/plugins.md: the block opened on line {fence[2]} is never closed"
    return Doc(blocks, {k: "\n".join(v) for k, v in sections.items()}, {k: "\n".join(v) for k, v in subsections.items()})


# ---------------------------------------------------------------------------------------------
# The reference, compared with the code as parsed Python


def signature(node: ast.FunctionDef) -> str:
    decorators = "".join(f"@{ast.unparse(d)} " for d in node.decorator_list)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{decorators}def {node.name}({ast.unparse(node.args)}){returns}"


def members(node: ast.ClassDef) -> dict[str, str]:
    """Each method (with decorators and signature) and class-level attribute, as parsed text."""
    found: dict[str, str] = {}
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            found[item.name] = signature(item)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            found[item.target.id] = ast.unparse(item)
        elif isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
            found[item.targets[0].id] = ast.unparse(item)
    return found


def header(node: ast.ClassDef) -> str:
    decorators = "".join(f"@{ast.unparse(d)} " for d in node.decorator_list)
    return f"{decorators}class {node.name}({', '.join(ast.unparse(b) for b in node.bases)})"


def source_node(obj: object) -> ast.FunctionDef | ast.ClassDef:
    node = ast.parse(textwrap.dedent(inspect.getsource(obj))).body[0]  # type: ignore[arg-type]
    assert isinstance(node, (ast.FunctionDef, ast.ClassDef))
    return node


def is_stub(node: ast.stmt) -> bool:
    """A definition as the reference writes one: bodies are ``...`` (examples have real code)."""
    def body_is_stub(body: list[ast.stmt]) -> bool:
        return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in body)

    if isinstance(node, ast.FunctionDef):
        return body_is_stub(node.body)
    if isinstance(node, ast.ClassDef):
        return all(is_stub(s) or isinstance(s, (ast.AnnAssign, ast.Assign, ast.Expr, ast.Pass)) for s in node.body)
    return isinstance(node, (ast.Assign, ast.AnnAssign))


def defined_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def hooks() -> dict[str, typing.Callable[..., object]]:
    return {name: f for name, f in vars(hookspecs).items() if callable(f) and hasattr(f, "cnnkit_spec")}


def compare_class(name: str, documented: ast.ClassDef, cls: type) -> list[str]:
    real = source_node(cls)
    assert isinstance(real, ast.ClassDef)
    problems = []
    if header(documented) != header(real):
        problems.append(f"{name}: documented as '{header(documented)}', the code has '{header(real)}'")
    ours, theirs = members(documented), members(real)
    for member, text in ours.items():
        if member not in theirs:
            problems.append(f"{name}.{member} is documented but {name} has no such member")
        elif text != theirs[member]:
            problems.append(f"{name}.{member}: documented as '{text}', the code has '{theirs[member]}'")
    if is_protocol(cls):
        required = [m for m in theirs if not (m.startswith("_") and not m.startswith("__"))]
    elif dataclasses.is_dataclass(cls):
        required = [f.name for f in dataclasses.fields(cls)]
    elif issubclass(cls, tuple) and hasattr(cls, "_fields"):  # a NamedTuple
        required = list(cls._fields)
    else:
        required = []
    problems += [f"{name}.{member} ('{theirs[member]}') is not documented" for member in required if member not in ours]
    return problems


def compare_value(name: str, documented: ast.Assign | ast.AnnAssign, module: types.ModuleType) -> list[str]:
    assert documented.value is not None
    expression = ast.unparse(documented.value)
    namespace = {**vars(typing), **{n: getattr(module, n) for n in module.__all__}}
    try:
        value = eval(expression, namespace)  # the doc's own text, trusted as the source is
    except Exception as exc:
        return [f"{name} = {expression}: the documented value does not evaluate ({exc})"]
    real = getattr(module, name)
    return [] if value == real else [f"{name} is documented as {expression}, the code has {real!r}"]


def stubs(doc: Doc, section: str) -> tuple[dict[str, ast.stmt], list[str]]:
    """The definitions the untitled ```python blocks of ``section`` document, by name (examples,
    whose bodies are real code, are left out), and the problems found reading them."""
    documented: dict[str, ast.stmt] = {}
    problems = []
    for block in doc.blocks:
        if block.section != section or block.lang != "python" or block.title:
            continue
        try:
            tree = ast.parse(block.text)
        except SyntaxError as exc:
            problems.append(f"the python block on line {block.line} does not parse: {exc}")
            continue
        for node in tree.body:
            name = defined_name(node)
            if name is None or not is_stub(node):
                continue
            if name in documented:
                problems.append(f"{name} is documented twice (again on line {block.line})")
            documented[name] = node
    return documented, problems


def api_problems(documented: dict[str, ast.stmt], module: types.ModuleType) -> list[str]:
    """Each name of ``module.__all__`` documented with the code's signature, members and value."""
    problems = []
    for name in module.__all__:
        obj, node = getattr(module, name), documented.get(name)
        if node is None:
            problems.append(f"{module.__name__}.{name} is not documented in the reference")
        elif isinstance(node, ast.ClassDef):
            if not inspect.isclass(obj):
                problems.append(f"{name} is documented as a class, but it is {type(obj).__name__}")
            else:
                problems += compare_class(name, node, obj)
        elif isinstance(node, ast.FunctionDef):
            real = source_node(obj) if inspect.isfunction(obj) else None
            if not isinstance(real, ast.FunctionDef):
                problems.append(f"{name} is documented as a function, but it is {type(obj).__name__}")
            elif signature(node) != signature(real):
                problems.append(f"{name}: documented as '{signature(node)}', the code has '{signature(real)}'")
        else:
            assert isinstance(node, (ast.Assign, ast.AnnAssign))
            problems += compare_value(name, node, module)
    return problems


def reference_problems(text: str) -> list[str]:
    """Everything in the hook reference (and the testing helpers' signatures) that disagrees with
    the code; empty when it is all true."""
    doc = parse(text)
    if REFERENCE not in doc.sections or TESTING not in doc.sections:
        return [f"docs/plugins.md lacks the section '## {REFERENCE}' or '## {TESTING}'"]
    documented, problems = stubs(doc, REFERENCE)
    for name, spec in hooks().items():
        node = documented.get(name)
        real = source_node(spec)
        assert isinstance(real, ast.FunctionDef)
        if not isinstance(node, ast.FunctionDef):
            problems.append(f"hook {name} is not documented (a 'def {name}(...)' in the reference)")
            continue
        node.decorator_list, real.decorator_list = [], []
        if signature(node) != signature(real):
            problems.append(f"hook {name}: documented as '{signature(node)}', the code has '{signature(real)}'")
    problems += api_problems(documented, contracts)
    for name in sorted(set(documented) - set(contracts.__all__) - set(hooks())):
        problems.append(f"the reference documents {name}, which is neither a hook nor in cnnkit.contracts.__all__")
    for kind, register in contracts.REGISTERS.items():
        problems += metadata_problems(doc, kind, register)
    for word in (plugin_selection.ONLY_ENV, plugin_selection.DISABLE_ENV, plugin_selection.NO_PLUGINS_ENV,
                 plugin_selection.STRICT_ENV, plugins.API_ATTRIBUTE, "tryfirst=True", "trylast=True", "wrapper=True", "hookwrapper=True"):
        if word not in doc.sections[REFERENCE]:
            problems.append(f"the reference never mentions {word}")
    helpers, more = stubs(doc, TESTING)
    problems += more + api_problems(helpers, testing)
    problems += [f"'{TESTING}' documents {name}, which cnnkit.testing does not export"
                 for name in sorted(set(helpers) - set(testing.__all__))]
    return problems


def metadata_problems(doc: Doc, kind: str, register: type) -> list[str]:
    """The section of hook ``register_<kind>`` defines the hook and its Register protocol, and
    lists every metadata key (the protocol's keyword parameters but ``help``) with its type."""
    hook = f"register_{kind}"
    if hook not in doc.subsections:
        return [f"the reference has no section '### `{hook}`'"]
    problems = []
    section_defs = {defined_name(node) for block in doc.blocks if block.subsection == hook and block.lang == "python"
                    for node in ast.parse(block.text).body}
    for needed in (hook, register.__name__):
        if needed not in section_defs:
            problems.append(f"the section of {hook} does not define {needed}")
    real = source_node(register)
    assert isinstance(real, ast.ClassDef)
    [call] = [node for node in real.body if isinstance(node, ast.FunctionDef) and node.name == "__call__"]
    expected = {arg.arg: f"{arg.arg}: {ast.unparse(arg.annotation)} = {ast.unparse(default)}"
                for arg, default in zip(call.args.kwonlyargs, call.args.kw_defaults)
                if arg.arg != "help" and arg.annotation is not None and default is not None}
    listed = {}
    for line in doc.subsections[hook].splitlines():
        found = METADATA.match(line)
        if found:
            kind_text = ast.unparse(ast.parse(found["type"], mode="eval"))
            default_text = ast.unparse(ast.parse(found["default"], mode="eval"))
            listed[found["name"]] = f"{found['name']}: {kind_text} = {default_text}"
    for key, text in expected.items():
        if key not in listed:
            problems.append(f"{hook}: metadata '{key}' ({text}) is not listed")
        elif listed[key] != text:
            problems.append(f"{hook}: metadata listed as '{listed[key]}', the code has '{text}'")
    problems += [f"{hook}: lists metadata '{key}', which {register.__name__} does not take" for key in listed
                 if key not in expected]
    return problems


def test_the_hook_reference_matches_the_code():
    assert reference_problems(DOC.read_text()) == []


def test_every_kind_has_a_hook_and_a_register_protocol():
    assert sorted(hooks()) == sorted(f"register_{kind}" for kind in contracts.REGISTERS)


@pytest.mark.parametrize("change, expected", [
    (("- `needs_batch: bool = False`: ", "- needs_batch: "),
     "register_initializers: metadata 'needs_batch' (needs_batch: bool = False) is not listed"),
    (("- `input_size: tuple[int, int, int] | None = None`", "- `input_size: tuple[int, int] | None = None`"),
     "register_models: metadata listed as 'input_size: tuple[int, int] | None = None', the code has "
     "'input_size: tuple[int, int, int] | None = None'"),
    (("def register_datasets(register: DatasetRegister) -> None: ...", "def register_datasets(register) -> None: ..."),
     "hook register_datasets: documented as 'def register_datasets(register) -> None'"),
    (("    seed: int = 0  # the run's seed", "    seed: int = 1  # the run's seed"),
     "DataRequest.seed: documented as 'seed: int = 1', the code has 'seed: int = 0'"),
    (("    def barrier(self) -> None: ...\n    def all_reduce", "    def all_reduce"),
     "Strategy.barrier ('def barrier(self) -> None') is not documented"),
    (("    error: str = \"\"  # why", "    errors: str = \"\"  # why"),
     "Registration.errors is documented but Registration has no such member"),
    (('API_VERSION = "1.1"', 'API_VERSION = "0.9"'), "API_VERSION is documented as '0.9', the code has '1.1'"),
    (("class CommandFactory(Protocol):", "class CommandMaker(Protocol):"),
     "cnnkit.contracts.CommandFactory is not documented in the reference"),
    (("channels: int = 3, seed: int = 0) -> Path: ...", "channels: int = 1, seed: int = 0) -> Path: ..."),
     "tiny_image_folder: documented as 'def tiny_image_folder(path: str | os.PathLike[str], classes: int=2, "
     "per_class: int=8, size: int=16, channels: int=1"),
])
def test_the_check_fails_when_the_reference_drifts(change, expected):
    """Each edit makes the doc disagree with the code in one way; the check names it."""
    old, new = change
    text = DOC.read_text()
    assert old in text, f"the doc no longer has {old!r}: update this test's example"
    problems = reference_problems(text.replace(old, new, 1))
    assert any(problem.startswith(expected) for problem in problems), problems


# ---------------------------------------------------------------------------------------------
# The tutorial, followed literally


PIP = """\
pip() {  # the test installs where it may: 'pip install -e DIR' into a folder on PYTHONPATH
    if [ "$#" -ne 3 ] || [ "$1" != install ] || [ "$2" != -e ]; then echo "unexpected: pip $*" >&2; return 2; fi
    python -m pip install --quiet --no-deps $DOC_PIP_BUILD --target "$DOC_SITE" "$(realpath "$3")"
}
set -euo pipefail
"""


def expected_lines_found(expected: str, output: str) -> str:
    """"" when every line of ``expected`` matches a line of ``output``, in order (``...`` in a
    line stands for any text; a line of only ``...`` for any lines); else the first that does not."""
    lines = [line.rstrip() for line in output.splitlines()]
    position = 0
    for wanted in expected.rstrip("\n").splitlines():
        if wanted.strip() in ("", "..."):
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.rstrip().split("...")))
        while position < len(lines) and not pattern.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return wanted
        position += 1
    return ""


@pytest.mark.slow
def test_the_tutorial_followed_literally_gives_a_working_installed_plugin(tmp_path):
    doc = parse(DOC.read_text())
    assert [s for s in RUN if s not in doc.sections] == []
    titled = [block for block in doc.blocks if block.title]
    assert {block.title for block in titled} >= {"cnnkit-tinyvgg/pyproject.toml", "cnnkit-tinyvgg/cnnkit_tinyvgg/__init__.py"}
    for block in titled:
        path = tmp_path / block.title
        assert not Path(block.title).is_absolute() and ".." not in Path(block.title).parts, block.title
        assert not path.exists(), f"two blocks are titled {block.title}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text)

    bin_dir = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith("CNNKIT_")}
    build = "--no-build-isolation" if importlib.util.find_spec("setuptools") else ""  # else pip fetches setuptools
    env.update(DOC_SITE=str(tmp_path / "site"), DOC_PIP_BUILD=build, PYTHONPATH=str(tmp_path / "site"),
               PATH=os.pathsep.join([bin_dir, env.get("PATH", "")]))
    runnable = [block for block in doc.blocks if block.section in RUN and block.lang in ("bash", "text")]
    assert runnable and runnable[0].lang == "bash"
    trained = []
    for index, block in enumerate(runnable):
        if block.lang != "bash":
            continue
        proc = subprocess.run(["bash", "-c", PIP + block.text], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"docs/plugins.md line {block.line}:\n{block.text}\n{output[-3000:]}"
        following = runnable[index + 1] if index + 1 < len(runnable) else None
        if following is not None and following.lang == "text":
            missing = expected_lines_found(following.text, output)
            assert not missing, (f"docs/plugins.md line {following.line}: '{missing}' is not in the output of\n"
                                 f"{block.text}\n{output[-3000:]}")
        trained += re.findall(r"cnnkit train .*--name (\S+)", block.text)
    assert trained, "the tutorial trains a model"
    for name in trained:
        assert (tmp_path / "runs" / name / "best.pt").is_file()
    assert (tmp_path / "site" / "cnnkit_tinyvgg" / "__init__.py").is_file()


def test_the_output_check_reads_wildcards():
    output = "Training tinyvgg on digits (1259 train)\nepoch 1/1\nbest epoch 1: val loss 0.86\n"
    assert expected_lines_found("Training tinyvgg on digits ...\nbest epoch 1: val loss ...\n", output) == ""
    assert expected_lines_found("best epoch 1: ...\nTraining ...\n", output) == "Training ..."
    assert expected_lines_found("epoch 2/1\n", output) == "epoch 2/1"
