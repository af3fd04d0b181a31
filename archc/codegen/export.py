"""Export: a checked net -> an ONNX file, through torch's exporter, verified on the way out.

The exported graph is the deployment network in eval mode (auxiliary heads never run there, and
the final softmax does, unless `logits`), with a dynamic batch dimension. torch's exporter
writes opset 18; another opset goes through ONNX's version converter, and a net it cannot
convert is refused with no file left behind. `export_onnx` runs the ONNX checker, compares
onnxruntime's output with the module's on a random batch, and reports the opset the file has.
"""

from __future__ import annotations

import logging
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from archc.codegen.lower import lower
from archc.errors import UsageError
from archc.pipeline import Analysis

EXPORTER_OPSET = 18  # what torch's exporter writes; other opsets go through ONNX's converter


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_diff: float  # onnxruntime against torch on one random batch
    opset: int  # as read back from the written file


def export_net(analysis: Analysis, path: str | Path, opset: int = EXPORTER_OPSET,
               logits: bool = False) -> ExportReport:
    """Export the deployment build of a checked net (freshly initialised weights)."""
    module = lower(analysis, heads=False, logits=logits).module
    return export_onnx(module, tuple(analysis.shapes[analysis.graph.input]), path, opset=opset)


def export_onnx(module: torch.nn.Module, input_shape: tuple[int, int, int], path: str | Path,
                batch: int = 2, opset: int = EXPORTER_OPSET) -> ExportReport:
    """Export `module` in eval mode at `opset`, or refuse (and leave no file); check the file;
    compare onnxruntime with PyTorch."""
    import onnx
    import onnxruntime

    path = Path(path)
    module = module.eval()
    x = torch.randn(batch, *input_shape)
    with warnings.catch_warnings(), _quiet("torch.onnx", "onnxscript"):
        warnings.simplefilter("ignore")  # the exporter's notes about its own internals
        torch.onnx.export(module, (x,), str(path), input_names=["image"],
                          output_names=["output"], opset_version=EXPORTER_OPSET, dynamo=True,
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                          external_data=False, verbose=False)
    if opset != EXPORTER_OPSET:
        _convert(path, opset)
    onnx.checker.check_model(str(path), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = module(x).numpy()
    return ExportReport(path, float(abs(got - want).max()), _opset_of(path))


def _convert(path: Path, opset: int) -> None:
    """Rewrite the file at `opset` with ONNX's version converter, or remove it and refuse."""
    import onnx

    try:
        converted = onnx.version_converter.convert_version(onnx.load(str(path)), opset)
        onnx.checker.check_model(converted, full_check=True)  # it can write invalid nodes
        onnx.save(converted, str(path))
    except Exception as error:  # the converter raises RuntimeError, ValueError, its own...
        path.unlink(missing_ok=True)
        lines = [line for line in str(error).splitlines() if line.strip()] or [repr(error)]
        reason = re.sub(r"^\S+\.h:\d+: ", "", lines[0])  # the C++ source it failed in
        raise UsageError(f"cannot write ONNX opset {opset} for this net: ONNX's version "
                         f"converter failed ({reason}); torch's exporter writes opset "
                         f"{EXPORTER_OPSET}, which works") from None
    if _opset_of(path) != opset:
        path.unlink(missing_ok=True)
        raise UsageError(f"cannot write ONNX opset {opset} for this net") from None


def _opset_of(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


@contextmanager
def _quiet(*loggers: str):
    """Silence libraries' loggers (onnxscript prints tracebacks of what it recovers from)."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
