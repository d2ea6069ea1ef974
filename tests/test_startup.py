"""Listing and help commands must not import the heavy libraries (they take seconds to import)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test starts a Python process

HEAVY = ("torch", "torchvision", "timm", "matplotlib", "numpy")

PROBE = f"""
import json, sys
from cnnkit.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}), file=sys.stderr)
"""


def probe(*args, env=None):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, env=env)
    return json.loads(proc.stderr.strip().splitlines()[-1]), proc


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """The torchvision model names, cached by a first listing (the one call that imports torchvision)."""
    env = {**os.environ, "CNNKIT_CACHE": str(tmp_path_factory.mktemp("cache"))}
    first, proc = probe("models", env=env)
    assert first["code"] == 0 and "torchvision" in first["heavy"], "a cold cache enumerates torchvision"
    assert list(Path(env["CNNKIT_CACHE"]).glob("torchvision-*-models-v*.json")), proc.stderr
    return env


@pytest.mark.parametrize(
    "args",
    [["--help"], ["plugins"], ["plugins", "--json"], ["models"], ["models", "resnet*"], ["datasets"],
     ["augmentations"], ["initializers"], ["strategies"], ["train", "--help"], ["summary", "--help"]],
)
def test_command_does_not_import_heavy_libraries(args, warm_cache):
    report, proc = probe(*args, env=warm_cache)
    assert report == {"code": 0, "heavy": []}, proc.stderr


def test_only_asking_for_timm_models_imports_timm(warm_cache):
    report, proc = probe("models", "timm/resnet1*", env=warm_cache)
    assert report["code"] == 0 and "timm" in report["heavy"], proc.stderr
