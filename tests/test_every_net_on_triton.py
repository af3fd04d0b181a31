"""The triton backend on every shipped net: it compiles each, builds no module its forward()
does not call, and equals the torch backend.

Each net is built at a small input (its text's `input` statement made 64 pixels or, where the
net cannot shrink that far, the next size that it takes; its `expect` shapes then speak of
another size and are not checked) so that all of them run within seconds on a CPU. Without a
GPU and outside Triton's interpreter, the fused kernels run as their torch stand-ins
(archc.backends.functional), so what this checks is the plan: folded batch norm, merged sibling
GEMMs, residual epilogues and concat buffers compute what the unfused module computes, with the
same state_dict, in eval and in training mode (in float64, where rounding cannot hide a wrong
rewrite; dropout off, as its draws follow the memory layout). The kernels themselves are
checked under the interpreter on small shapes (test_triton_backend, test_gates) and offline
against the GPU's limits (test_aot).
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from conftest import ROOT, nets, sweep

# Imported here, while TRITON_INTERPRET is set: Triton fixes a kernel as interpreted or compiled
# when it is decorated, and the tests below unset it (the stand-ins) before the module is built.
from archc.backends import functional  # noqa: F401
from archc.backends.backend import TORCH
from archc.backends.triton.calls import TRITON
from archc.codegen.lower import lower
from archc.errors import ArchError
from archc.pipeline import analyse

INPUT = re.compile(r"^(\s*input\s+)(\d+)x\S+", re.MULTILINE)
SIZES = (64, 96, 160, 299)  # Inception-v3 takes 75 pixels at least, and AlexNet 63


def small(name: str):
    """The net's analysis at the smallest of SIZES it takes."""
    path = ROOT / "nets" / name
    text = path.read_text()
    for size in SIZES:
        try:
            return analyse(path, text=INPUT.sub(rf"\g<1>\g<2>x{size}x{size}", text, count=1))
        except ArchError:
            continue
    raise AssertionError(f"{name} takes none of the sizes {SIZES}")


# Families whose triton module another default test already compares with torch's
# (test_triton_mobile: ConvNeXt, EfficientNet; test_triton_backend: GoogLeNet; MobileNet-v2
# here for the inverted residuals MnasNet shares): here under -m slow only, which CI runs.
ELSEWHERE = {"convnext_tiny.arch", "efficientnet_b0.arch", "googlenet.arch", "mnasnet0_5.arch"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ELSEWHERE
                                  else entry for n, entry in zip(nets(), sweep(nets()))])
def test_the_triton_backend_equals_the_torch_backend(name, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the kernels' torch stand-ins
    analysis = small(name)
    torch.manual_seed(0)
    reference = lower(analysis, heads=False, logits=True, backend=TORCH).module
    with torch.device("meta"):  # no weights drawn: the reference's are loaded, all of them
        lowered = lower(analysis, heads=False, logits=True, backend=TRITON)
    assert not unused_members(lowered.emitted.source)
    fused = lowered.module
    assert list(fused.state_dict()) == list(reference.state_dict())
    fused.to_empty(device="cpu").load_state_dict(reference.state_dict())
    for module in (reference, fused):
        module.double()  # so that rounding, which layouts and folding change, is no excuse
        for layer in module.modules():
            if hasattr(layer, "p") and isinstance(layer.p, float):
                layer.p = 0.0  # dropout and stochastic depth: their draws follow the layout
    c, h, w = analysis.shapes[analysis.graph.input]
    x = torch.randn(2, c, h, w, dtype=torch.float64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "runs as torch ops here": said, and meant
        for mode in ("eval", "train"):
            want, got = getattr(reference, mode)()(x), getattr(fused, mode)()(x)
            assert relative_error(got, want) < 1e-10, mode


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape and got.dtype == want.dtype == torch.float64
    return ((got - want).norm() / want.norm()).item()


def unused_members(source: str) -> list[str]:
    """`self.x = ...` in a class's __init__ that its forward() never reads."""
    unused = []
    for text in source.split("\nclass ")[1:]:
        init, _, forward = text.partition("    def forward(")
        for attr in re.findall(r"^        self\.(\w+) = ", init, re.MULTILINE):
            if not re.search(rf"self\.{attr}\b", forward):
                unused.append(f"{text.split('(')[0]}.{attr}")
    return unused


def test_unused_members_are_found():
    source = "\nclass A(nn.Module):\n    def __init__(self):\n        self.pool = P()\n" \
             "        self.conv = C()\n\n    def forward(self, x):\n        return self.conv(x)\n"
    assert unused_members(source) == ["A.pool"]
