"""Export: a checked net -> an ONNX file, through torch's exporter, verified on the way out.

The exported graph is the deployment network in eval mode (auxiliary heads never run there, and
the final softmax does), with a dynamic batch dimension. `export_onnx` runs the ONNX checker and,
with onnxruntime, compares its output with the module's on a random batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from archc.lower import lower
from archc.pipeline import Analysis


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_diff: float  # onnxruntime against torch on one random batch
    opset: int


def export_net(analysis: Analysis, path: str | Path, opset: int = 18) -> ExportReport:
    """Export the deployment build of a checked net (freshly initialised weights)."""
    module = lower(analysis, heads=False).module
    return export_onnx(module, tuple(analysis.shapes[analysis.graph.input]), path, opset=opset)


def export_onnx(module: torch.nn.Module, input_shape: tuple[int, int, int], path: str | Path,
                batch: int = 2, opset: int = 18) -> ExportReport:
    """Export `module` in eval mode; check the file; compare onnxruntime with PyTorch."""
    import onnx
    import onnxruntime

    path = Path(path)
    module = module.eval()
    x = torch.randn(batch, *input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes about its own internals
        torch.onnx.export(module, (x,), str(path), input_names=["image"],
                          output_names=["output"], opset_version=opset, dynamo=True,
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                          external_data=False, verbose=False)
    onnx.checker.check_model(str(path), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = module(x).numpy()
    return ExportReport(path, float(abs(got - want).max()), opset)
