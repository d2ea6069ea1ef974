"""cnnkit.contracts: the one public, typed contract a plugin imports (issue 16, deliverable 1)."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import cnnkit
from cnnkit import contracts, hookspecs
from cnnkit.contracts import REGISTERS, Reference
from cnnkit.registry import metadata_keys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_contract_and_the_hooks_imports_no_torch():
    assert fresh("import sys, cnnkit.contracts, cnnkit.hookspecs; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))") == "[]"


def test_the_names_that_need_torch_are_the_real_classes_imported_on_first_use():
    from cnnkit.data.images import UnreadableImage
    from cnnkit.data.splits import DataSplits, Split, StreamedSplit
    from cnnkit.engine import strategies

    assert (contracts.Split, contracts.StreamedSplit, contracts.DataSplits, contracts.UnreadableImage) == (
        Split, StreamedSplit, DataSplits, UnreadableImage)
    assert contracts.SingleProcessStrategy is strategies.SingleProcessStrategy
    assert contracts.DistributedStrategy is strategies.DistributedStrategy
    assert contracts.shard_steps is strategies.shard_steps
    assert "SingleProcessStrategy" in dir(contracts)
    with pytest.raises(AttributeError, match="has no attribute 'Registr'"):
        contracts.Registr  # noqa: B018


def test_every_exported_name_exists():
    assert [name for name in contracts.__all__ if not hasattr(contracts, name)] == []


def test_every_hook_is_typed_with_its_kinds_register_protocol():
    for kind, protocol in REGISTERS.items():
        hook = getattr(hookspecs, f"register_{kind}")
        [parameter] = inspect.signature(hook).parameters.values()
        assert (parameter.name, parameter.annotation) == ("register", protocol.__name__)
        assert hasattr(contracts, protocol.__name__)


@pytest.mark.parametrize("kind", sorted(REGISTERS))
def test_every_hook_docstring_names_each_metadata_key_of_its_contract(kind):
    doc = getattr(hookspecs, f"register_{kind}").__doc__
    assert [key for key in metadata_keys(kind) if f"``{key}" not in doc] == []


def test_the_augmentation_hook_documents_the_contract_the_pipeline_calls():
    doc = hookspecs.register_augmentations.__doc__
    assert "fn(image) -> image" in doc and "fn(images, targets, generator) -> (images," in doc
    assert "fn(images, generator) -> images" not in doc


def test_metadata_keys_are_the_register_protocols_keyword_parameters():
    assert metadata_keys("models") == ("input_size", "params", "pretrained", "lister", "describe", "member_help")
    assert metadata_keys("datasets") == ("classes",)
    assert metadata_keys("initializers") == ("needs_batch",)
    assert metadata_keys("strategies") == ("distributed",)
    assert metadata_keys("commands") == ()
    assert set(metadata_keys("augmentations")) == {
        "stage", "params", "batched", "batched_when", "spec", "made_for", "eval_crop", "eval_crop_source"}


def test_py_typed_ships_with_the_package():
    assert (Path(cnnkit.__file__).parent / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data.get("cnnkit", []), 'pyproject.toml: [tool.setuptools.package-data] "cnnkit" = ["py.typed"]'


def test_a_reference_imports_its_module_only_when_called(tmp_path, monkeypatch):
    (tmp_path / "lazy_target.py").write_text("def double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_target", raising=False)
    reference = Reference("lazy_target:double")
    assert "lazy_target" not in sys.modules
    assert reference(21) == 42 and reference.resolve() is sys.modules["lazy_target"].double


def test_a_reference_shows_its_targets_signature_and_pickles_by_name():
    reference = Reference("cnnkit.registry:suggest")
    assert list(inspect.signature(reference).parameters)[:2] == ["name", "choices"]
    assert pickle.loads(pickle.dumps(reference)) == reference


@pytest.mark.parametrize("text, error", [
    ("cnnkit.registry.suggest", "is not a reference of the form 'package.module:attribute'"),
    ("cnnkit registry:suggest", "is not a reference"),
    ("cnnkit.registry:", "is not a reference"),
])
def test_a_malformed_reference_is_refused_when_made(text, error):
    with pytest.raises(ValueError, match=error):
        Reference(text)


def test_a_reference_to_something_missing_says_what_is_missing():
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        Reference("no_such_module:factory")()
    with pytest.raises(AttributeError, match="'cnnkit.registry:nothing_here': cnnkit.registry has no attribute 'nothing_here'"):
        Reference("cnnkit.registry:nothing_here")()
    with pytest.raises(TypeError, match="'cnnkit.registry:KIND_NOUNS' is dict, not callable"):
        Reference("cnnkit.registry:KIND_NOUNS")()
