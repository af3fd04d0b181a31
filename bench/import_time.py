"""How long `archc import` takes on the largest nets, the source's own export timed apart.

PyTorch route: torchvision's DenseNet-201 and EfficientNet-B7 (random weights), imported
(archc.importer.imported: torch.fx trace, one forward for the shapes, one under
FlopCounterMode for the MACs, layout, blocks, the canonical text). ONNX route: ResNet-50
exported by torch (dynamo, optimised: its own time) and then imported
(archc.importer.imported_onnx). Then the imported text checked (archc's front end). One run
each, after a warm-up import of ResNet-18 (the first fx trace pays for imports).

    .venv/bin/python bench/import_time.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from torchvision_oracle import torchvision  # noqa: E402  (the test-only oracle)

from archc.importer import imported, imported_onnx  # noqa: E402
from archc.pipeline import analyse  # noqa: E402


def timed(work):
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def main() -> None:
    models = torchvision().models
    imported(models.resnet18().eval(), (3, 224, 224))  # warm
    print(f"{'net':18s} {'route':8s} {'export':>8s} {'import':>8s} {'check':>7s}  lines")
    for name, shape in (("densenet201", (3, 224, 224)), ("efficientnet_b7", (3, 600, 600))):
        module = getattr(models, name)().eval()
        result, seconds = timed(lambda m=module, s=shape: imported(m, s))
        analysis, check = timed(lambda r=result: analyse("<import>.arch", text=r.text))
        assert analysis.diagnostics == [], analysis.diagnostics[:1]
        print(f"{name:18s} {'torch':8s} {'-':>8s} {seconds:7.2f}s {check:6.2f}s  "
              f"{result.text.count(chr(10))}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "resnet50.onnx"
        module = models.resnet50().eval()
        _, export = timed(lambda: torch.onnx.export(
            module, (torch.randn(1, 3, 224, 224),), str(path), dynamo=True, verbose=False))
        result, seconds = timed(lambda: imported_onnx(path))
        analysis, check = timed(lambda: analyse("<import>.arch", text=result.text))
        assert analysis.diagnostics == [], analysis.diagnostics[:1]
        print(f"{'resnet50':18s} {'onnx':8s} {export:7.2f}s {seconds:7.2f}s {check:6.2f}s  "
              f"{result.text.count(chr(10))}")


if __name__ == "__main__":
    main()
