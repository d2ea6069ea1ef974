"""Listing and help commands must not import the heavy libraries (they take seconds to import)."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "timm", "matplotlib", "numpy")

PROBE = """
import json, sys
from cnnkit.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted(m for m in %r if m in sys.modules)}), file=sys.stderr)
""" % (HEAVY,)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["plugins"], ["plugins", "--json"], ["models"], ["datasets"], ["augmentations"],
     ["initializers"], ["strategies"], ["train", "--help"]],
)
def test_command_does_not_import_heavy_libraries(args):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, proc.stderr
