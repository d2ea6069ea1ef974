"""``cnnkit export``: a checkpoint's model as TorchScript or ONNX (PyTorch's own exporters), or
its weights as safetensors; every export is loaded back and checked against PyTorch."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
import warnings
from pathlib import Path

import torch

from cnnkit.engine.checkpoint import atomic_write, refuse_overwrite
from cnnkit.errors import CnnkitError, UsageError
from cnnkit.inference.model import load_trained

TOLERANCE = 1e-4
SUFFIX = {"torchscript": ".torchscript.pt", "onnx": ".onnx", "safetensors": ".safetensors"}


def export(checkpoint: str, form: str, out: str = "", force: bool = False) -> tuple[Path, float, str]:
    """(file written, largest absolute difference to PyTorch on sample inputs, what ran it)."""
    trained = load_trained(checkpoint)
    source = Path(checkpoint)
    target = Path(out) if out else (source if source.is_dir() else source.parent) / f"model{SUFFIX[form]}"
    suffix = SUFFIX[form].rsplit(".", 1)[1]
    if target.suffix != "." + suffix:
        raise UsageError(f"--out '{target}' must end in .{suffix} for --format {form}.")
    if target.is_dir():
        raise UsageError(f"--out '{target}' is a folder; name the file to write.")
    if not target.parent.is_dir():
        raise UsageError(f"--out '{target}': the folder '{target.parent}' does not exist.")
    if target.name in ("best.pt", "last.pt") or (target.exists() and target.resolve() == source.resolve()):
        raise UsageError(f"--out '{target}' would overwrite a checkpoint; choose another name.")
    refuse_overwrite(target, force)
    sample = torch.randn(4, *trained.input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = trained.model(sample)
    writer = {"safetensors": to_safetensors, "torchscript": to_torchscript, "onnx": to_onnx}[form]
    diff, runner = writer(trained, sample, expected, target)
    return target, diff, runner


def to_safetensors(trained, sample, expected, target: Path) -> tuple[float, str]:
    from safetensors.torch import load_file, save

    state = trained.model.state_dict()
    meta = {"model": trained.saved["model"]["name"], "classes": ",".join(trained.classes)}
    atomic_write(target, save({k: v.contiguous() for k, v in state.items()}, metadata=meta))
    loaded = load_file(str(target))
    diff = max((loaded[k] - v).abs().max().item() if v.is_floating_point() else float(not torch.equal(loaded[k], v))
               for k, v in state.items())
    return diff, "safetensors"


@contextlib.contextmanager
def quiet_torchscript():
    """PyTorch marks torch.jit deprecated with a FutureWarning per call; cnnkit says it once, plainly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


def to_torchscript(trained, sample, expected, target: Path) -> tuple[float, str]:
    from cnnkit.console import note

    buffer = io.BytesIO()
    with quiet_torchscript():
        torch.jit.save(torch.jit.trace(trained.model, sample), buffer)
        atomic_write(target, buffer.getvalue())
        with torch.inference_mode():
            got = torch.jit.load(str(target))(sample)
    note("PyTorch deprecates TorchScript (torch.jit) in favour of torch.export; --format onnx is built on that.")
    return check(expected, got, target), "TorchScript"


def to_onnx(trained, sample, expected, target: Path) -> tuple[float, str]:
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"ONNX export needs {', '.join(missing)}: pip install 'cnnkit[export]'.")
    import onnxruntime

    with tempfile.TemporaryDirectory() as folder:  # written whole beside, then moved in: a failed write keeps the old file
        scratch = Path(folder) / "model.onnx"
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates its steps on stdout
                torch.onnx.export(trained.model, (sample,), str(scratch), input_names=["images"], output_names=["logits"],
                                  dynamo=True, verbose=False, external_data=False)  # one self-contained file
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            raise CnnkitError(f"PyTorch's ONNX exporter could not export this model: {lines[0] if lines else type(exc).__name__}; "
                              "try --format torchscript.") from None
        atomic_write(target, scratch.read_bytes())
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: sample.numpy()})[0])
    return check(expected, got, target), "onnxruntime"


def check(expected: torch.Tensor, got: torch.Tensor, target: Path) -> float:
    diff = (expected - got).abs().max().item()
    if diff > TOLERANCE:
        raise CnnkitError(f"The exported model '{target}' differs from PyTorch by up to {diff:.2e} (more than {TOLERANCE:g}); "
                          "do not use it. Try the other --format.")
    return diff
