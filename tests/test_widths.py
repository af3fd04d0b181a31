"""Width helpers: a block reads its input channels (`in_channels`), expressions call integer
functions (`divisible`, `ceil`, `floor`, `min`, `max`), and a repetition is an expression;
the front end's counts and the emitted module agree on all of them."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision_oracle import torchvision

import archc
from archc.codegen.lower import lower
from archc.errors import ArchError
from archc.lang.functions import make_divisible
from archc.pipeline import analyse


def write(tmp_path, text: str):
    path = tmp_path / "net.arch"
    path.write_text(text)
    return path


def params_of(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("divisor", [1, 3, 8, 16])
def test_divisible_is_torchvisions_make_divisible(divisor):
    rounding = torchvision().models._utils._make_divisible
    values = [v / 4 for v in range(1, 4000)] + [24 * a for a in (0.25, 0.35, 0.5, 0.75, 1.3)]
    assert [make_divisible(v, divisor) for v in values] == \
        [rounding(v, divisor) for v in values]


def test_functions_compute_widths(tmp_path):
    path = write(tmp_path, """
net t(alpha = 0.75) {
    input 3x8x8
    conv 1x1 (divisible(32 * alpha, 8))
    conv 1x1 (ceil(10 / 3))
    conv 1x1 (floor(10 / 3))
    conv 1x1 (max(1, 6 / 2))
    conv 1x1 (min(5, 2 + 1))
}
""")
    graph = analyse(path).graph
    assert [graph.node(r.output).op.channels for r in graph.rows] == [24, 4, 3, 3, 3]


def test_a_block_reads_its_input_channels(tmp_path):
    path = write(tmp_path, """
block widen(t) { conv 1x1 (in_channels * t) }
net t {
    input 3x8x8
    conv 1x1 5
    widen(2)
    widen(3)
    { conv 1x1 7; widen(1) }
}
""")
    analysis = analyse(path)
    assert [analysis.shapes[r.output].c for r in analysis.graph.rows] == [5, 10, 30, 7]


def test_a_parameter_default_reads_the_input_and_earlier_parameters(tmp_path):
    path = write(tmp_path, """
block squeeze(r = 4, c = in_channels / r) { conv 1x1 c }
net t {
    input 16x8x8
    squeeze()
    squeeze(2)
}
""")
    analysis = analyse(path)
    assert [analysis.shapes[r.output].c for r in analysis.graph.rows] == [4, 2]


def test_a_repetition_is_an_expression(tmp_path):
    path = write(tmp_path, """
net t(depth = 1.4) {
    input 3x8x8
    conv 1x1 4 x(ceil(3 * depth))
    conv 1x1 4 x(max(1, floor(depth)))
}
""")
    graph = analyse(path).graph
    assert [r.repeat for r in graph.rows] == [5, 1]
    assert len(graph) == 1 + 5 + 1


# A net of every helper inside blocks, nested: the emitted block classes compute the widths
# in Python from their constructor arguments, so they must agree with the front end's.
HELPERS = """
block se(r = 4, squeezed = max(8, in_channels / r)) {
    mul { id; { gap; conv 1x1 squeezed relu; conv 1x1 in_channels sigmoid } }
}
block inverted(t, c, alpha) {
    conv 1x1 (in_channels * t) relu
    conv 3x3 (in_channels * t) pad=1 groups=(in_channels * t) relu
    se()
    conv 1x1 (divisible(c * alpha, 8))
}
block stage(c, n, alpha) { inverted(6, c, alpha) x(ceil(n * 1.5)) }
net t(alpha = 0.75) {
    input 3x16x16
    conv 3x3 (divisible(16 * alpha, 8)) pad=1
    stage(40, 1, alpha)
    stage(24, 2, 1.0)
    gap
}
"""


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=pytest.mark.slow)])
def test_emitted_blocks_compute_the_same_widths(tmp_path, backend, monkeypatch):
    """The triton variant is slow: its forward runs in Triton's interpreter (over a minute)."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    analysis = analyse(write(tmp_path, HELPERS))
    module = archc.compile(analysis.path, backend=backend)
    # By hand: the stem 448; stage 1 (two blocks, 32 wide) 10,424 + 33,104; stage 2 (three
    # blocks, 24 wide) 31,560 + 2 x 19,068.
    assert params_of(module) == sum(c.params for c in analysis.costs.values()) == 113_672
    out = module.eval()(torch.randn(1, 3, 16, 16))
    assert out.shape == (1, analysis.shapes[analysis.graph.output].c) == (1, 24)


def test_emitted_source_defines_only_the_functions_it_calls(tmp_path):
    source = lower(analyse(write(tmp_path, HELPERS))).emitted.source
    assert "def make_divisible(value, divisor):" in source
    assert "make_divisible(c * alpha, 8)" in source  # inside a function: real numbers
    assert "Se(in_channels * t, 4, max(8, in_channels * t // 4))" in source  # exact division
    assert "math" not in source  # the repetition's ceil is the build's, not the module's
    rounded = lower(analyse(write(tmp_path, """
block third(c) { conv 1x1 (ceil(c / 3)) }
net t { input 3x8x8; third(10); third(11) }
"""))).emitted.source
    assert "import math" in rounded and "math.ceil(c / 3)" in rounded
    assert "make_divisible" not in rounded


def test_a_real_width_within_rounding_of_an_integer_is_that_integer(tmp_path):
    """Issue 35: `f * 8` with f = 0.5 and `2 * 0.7 * 10` (14.000000000000002) were refused as
    real; each is its integer in the counts, and the emitted class rounds it, so another `f`
    through the constructor gives that width."""
    path = write(tmp_path, """
block b(f, c) { conv 1x1 (f * c) relu }
net n(f = 0.5) {
    input 3x8x8
    conv 1x1 (f * 8)
    conv 1x1 (2 * 0.7 * 10)
    b(1.5, 4)
}
""")
    net = archc.compile(path)
    assert [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)] == \
        [4, 14, 6]
    assert net(torch.randn(1, 3, 8, 8)).shape == (1, 6, 8, 8)
    assert type(net)(f=0.75).conv1.out_channels == 6


def test_regnets_functions_compute_its_widths(tmp_path):
    """`log`, `pow` and `round` as torchvision's RegNet computes a stage's width: each block's
    `w0 * wm ** round(log(wa * j / w0 + 1) / log(wm))`, quantised to 8."""
    w0, wa, wm = 24, 24.48, 2.54
    path = write(tmp_path, f"""
net n(j = 3) {{
    input 3x8x8
    conv 1x1 (divisible(pow({wm}, round(log({wa} * j / {w0} + 1) / log({wm}))) * {w0}, 8))
}}
""")
    width = w0 * wm ** round(math.log(wa * 3 / w0 + 1) / math.log(wm))
    assert archc.compile(path).conv1.out_channels == make_divisible(width, 8)
    assert archc.compile(path, overrides={"j": 9}).conv1.out_channels == \
        make_divisible(w0 * wm ** round(math.log(wa * 9 / w0 + 1) / math.log(wm)), 8)


INDEXED = """
block mb(c, p) { sum { residual: { conv 1x1 c; bn; relu; droppath p }; id } }
block stage(c, first) { mb(c, 0.1 * (first + i) / 4) x2 as i }
net n(base = 2) {
    input 8x8x8
    mb(8, 0.1 * (i + base) / 4) x3 as i
    wide: conv 1x1 (8 * (j + 1)) x2 as j
    stage(16, 3)
}
"""


def test_a_repetition_names_its_index(tmp_path):
    """Issue 35: `x3 as i` reads the pass's index (0, 1, 2) in the statement's arguments, so
    EfficientNet's per-block stochastic depth is one statement; each pass's layers are members
    of the one statement, as any repetition's are, and the emitted net writes each pass's value
    in its own parameters' terms, so `base` through the constructor moves every rate."""
    path = write(tmp_path, INDEXED)
    rates = [0.1 * (i + 2) / 4 for i in range(3)] + [0.1 * (3 + i) / 4 for i in range(2)]
    net = archc.compile(path)
    assert [m.p for m in net.modules() if hasattr(m, "p")] == rates
    assert [m.out_channels for m in net.wide] == [8, 16]
    assert [k for k in net.state_dict() if k.endswith("conv.weight")] == [
        "mb1.0.residual.conv.weight", "mb1.1.residual.conv.weight",
        "mb1.2.residual.conv.weight", "stage1.mb1.0.residual.conv.weight",
        "stage1.mb1.1.residual.conv.weight"]
    assert [m.p for m in type(net)(base=4).mb1.modules() if hasattr(m, "p")] == \
        [0.1 * (i + 4) / 4 for i in range(3)]
    row = analyse(path).graph.rows[0]
    assert (row.repeat, row.block_args) == (3, (("c", 8), ("p", "0.1 * (i + base) / 4")))


def test_a_repetitions_index_may_not_hide_a_parameter(tmp_path):
    path = write(tmp_path, "net n(i = 2) {\n    input 3x8x8\n    conv 1x1 (4 * i) x2 as i\n}\n")
    with pytest.raises(ArchError, match="the repetition's index 'i' would hide the parameter"):
        analyse(path).raise_errors()
