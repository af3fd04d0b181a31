"""Semantics of the language, one rule at a time, through the pipeline's named stages."""

from __future__ import annotations

import pytest

from archc import ops
from archc.errors import ArchError
from archc.pipeline import analyse


def shapes_of(body: str, tmp_path, header: str = "", params: str = "") -> list[tuple]:
    """Output shape (C, H, W) of every top-level row of a net with `body`."""
    path = tmp_path / "net.arch"
    path.write_text(f"{header}\nnet n{params} {{\n{body}\n}}\n")
    analysis = analyse(path)
    return [tuple(analysis.shapes[r.output]) for r in analysis.graph.rows]


def analysed(body: str, tmp_path, header: str = ""):
    path = tmp_path / "net.arch"
    path.write_text(f"{header}\nnet n {{\n{body}\n}}\n")
    return analyse(path)


@pytest.mark.parametrize("size, window, stride, pad, rounding, want", [
    (112, 3, 2, 0, "ceil", 56),   # GoogLeNet: 112 -> 56 -> 28 -> 14 -> 7
    (14, 3, 2, 0, "ceil", 7),
    (14, 3, 2, 0, "floor", 6),
    (32, 3, 2, 0, "ceil", 16),    # NIN-CIFAR: 32 -> 16 -> 8
    (6, 2, 2, 1, "ceil", 4),      # ceil would give 5; the last window starts in the padding
    (5, 3, 3, 1, "ceil", 2),      # (5+2-3)/3 = 1.33 -> 3 windows; the third starts at 6 >= 5+1
    (7, 7, 1, 0, "floor", 1),
])
def test_pool_rounding(tmp_path, size, window, stride, pad, rounding, want):
    body = f"input 1x{size}x{size}\nmaxpool {window}x{window}/{stride} pad={pad} round={rounding}"
    assert shapes_of(body, tmp_path)[0] == (1, want, want)


def test_convolutions_round_down_and_same_padding_keeps_size(tmp_path):
    body = "input 3x224x224\nconv 7x7/2 64 pad=same\nconv 3x3 8 pad=same\nconv 2x2/2 8"
    assert shapes_of(body, tmp_path) == [(64, 112, 112), (8, 112, 112), (8, 56, 56)]


def test_defaults_apply_to_the_rest_of_the_body_and_into_blocks(tmp_path):
    header = "block b(c) { conv 3x3 c }\nblock own(c) { default conv pad=valid; conv 3x3 c }"
    body = "input 1x8x8\nconv 3x3 4\ndefault conv pad=same relu\nconv 3x3 4\nb(4)\nown(4)"
    assert shapes_of(body, tmp_path, header) == [(4, 6, 6), (4, 6, 6), (4, 6, 6), (4, 4, 4)]
    analysis = analysed(body, tmp_path, header)
    acts = [analysis.graph.node(n).op.act for n in analysis.graph.order()[1:]]
    assert acts == ["linear", "relu", "relu", "relu"]


def test_default_pool_covers_both_pools(tmp_path):
    body = "input 1x14x14\ndefault pool round=ceil\nmaxpool 3x3/2\navgpool 3x3/2"
    assert shapes_of(body, tmp_path) == [(1, 7, 7), (1, 3, 3)]


def test_repetition_block_defaults_and_expressions(tmp_path):
    header = "block tower(c, n = c * 2) { conv 1x1 n; conv 1x1 (c + 1) }"
    body = "input 3x8x8\ntower(4) x3\ntower(2, 2 * (3 + 1))"
    analysis = analysed(body, tmp_path, header)
    convs = [analysis.graph.node(n).op.channels for n in analysis.graph.order()[1:]]
    assert convs == [8, 5, 8, 5, 8, 5, 8, 3]
    assert analysis.graph.rows[0].repeat == 3


def test_concat_joins_channels_in_branch_order(tmp_path):
    body = "input 8x10x10\nconcat {\n conv 1x1 3\n { conv 1x1 2; conv 3x3 5 pad=1 }\n" \
           " maxpool 3x3/1 pad=1\n}"
    analysis = analysed(body, tmp_path)
    concat = analysis.graph.node(analysis.graph.output)
    assert isinstance(concat.op, ops.Concat)
    assert [analysis.shapes[i].c for i in concat.inputs] == [3, 5, 8]
    assert tuple(analysis.shapes[analysis.graph.output]) == (16, 10, 10)


def test_grouped_conv_counts(tmp_path):
    analysis = analysed("input 24x8x8\nconv 3x3 48 groups=24 pad=1", tmp_path)
    cost = analysis.costs[analysis.graph.output]
    assert (cost.weights, cost.biases, cost.macs) == (48 * 1 * 9, 48, 48 * 9 * 64)


def test_fc_flattens_its_input(tmp_path):
    analysis = analysed("input 512x7x7\nfc 4096", tmp_path)
    cost = analysis.costs[analysis.graph.output]
    assert (cost.weights, cost.biases, cost.macs) == (25088 * 4096, 4096, 25088 * 4096)


def test_head_hangs_from_a_label_and_is_not_in_the_inference_total(tmp_path):
    body = "input 3x8x8\nmid: conv 3x3 4 pad=1\nfc 10\nhead side from mid weight 0.5 { fc 10 }"
    analysis = analysed(body, tmp_path)
    (head,) = analysis.graph.heads
    assert (head.name, head.weight) == ("side", 0.5)
    assert analysis.graph.node(head.output).inputs == (analysis.graph.rows[0].output,)
    assert head.output not in analysis.graph.main_nodes()


def test_expect_with_tolerance(tmp_path):
    ok = analysed("input 3x8x8\nconv 3x3 8 pad=1\nexpect params=220 tol=5%", tmp_path)
    assert ok.errors == []
    bad = analysed("input 3x8x8\nconv 3x3 8 pad=1\nexpect params=220 tol=1", tmp_path)
    assert [e.message for e in bad.errors] == ["expected params 220, computed 224"]


def test_paper_values_are_warnings_with_one_unit_of_slack(tmp_path):
    close = analysed("input 3x8x8\nconv 3x3 8 pad=1  paper weights=0.2Ki", tmp_path)
    assert close.diagnostics == []  # 216 = 0.21Ki: within 0.1Ki
    far = analysed("input 3x8x8\nconv 3x3 8 pad=1  paper weights=0.1Ki", tmp_path)
    assert [(d.severity, d.message) for d in far.diagnostics] == \
        [("warning", "the paper prints weights 0.1Ki; computed 0.21Ki")]


def test_errors_name_the_block_use(tmp_path):
    header = "block b(c) { conv 5x5 c }"
    with pytest.raises(ArchError) as caught:
        analysed("input 3x8x8\nb(4)\nb(4)", tmp_path, header)
    assert caught.value.span.line == 1  # the conv inside the block
    assert [n.span.line for n in caught.value.notes] == [5]  # the second use


def test_source_order_is_a_topological_order():
    import networkx as nx
    from conftest import ROOT

    graph = analyse(ROOT / "nets/googlenet.arch").graph
    assert list(graph.order()) == list(nx.lexicographical_topological_sort(graph.to_networkx()))


# ---- files: use, encodings -----------------------------------------------------------------


def write_files(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "net.arch"


def test_a_diamond_of_uses_loads_the_shared_file_once(tmp_path):
    path = write_files(tmp_path, {
        "lib/base.arch": "block unit(c) { conv 1x1 c }",
        "lib/left.arch": 'use "base.arch"\nblock left(c) { unit(c) }',
        "lib/right.arch": 'use "base.arch"\nblock right(c) { unit(c); unit(c) }',
        "net.arch": 'use "lib/left.arch"\nuse "lib/right.arch"\nuse "lib/base.arch"\n'
                    "net n {\n input 3x8x8\n left(4)\n right(5)\n unit(6)\n}\n",
    })
    analysis = analyse(path)
    assert [tuple(analysis.shapes[r.output]) for r in analysis.graph.rows] == \
        [(4, 8, 8), (5, 8, 8), (6, 8, 8)]
    assert [u.name for u in analysis.graph.block_uses] == \
        ["left", "unit", "right", "unit", "unit", "unit"]


def test_two_definitions_of_one_name_are_an_error_at_both(tmp_path):
    path = write_files(tmp_path, {
        "a.arch": "block unit(c) { conv 1x1 c }",
        "b.arch": "block unit(c) { conv 3x3 c }",
        "net.arch": 'use "a.arch"\nuse "b.arch"\nnet n {\n input 3x8x8\n unit(4)\n}\n',
    })
    with pytest.raises(ArchError, match="block 'unit' is defined twice") as caught:
        analyse(path)
    error = caught.value
    assert error.span.source.path.endswith("b.arch")
    assert [(n.span.source.path[-6:], n.span.line) for n in error.notes] == \
        [("a.arch", 1), ("t.arch", 2), ("t.arch", 1)]


def test_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.arch"
    path.write_bytes("\ufeffnet n {\n input 3x8x8\n conv 1x1 4\n}\n".encode())
    assert tuple(analyse(path).shapes[analyse(path).graph.output]) == (4, 8, 8)


def test_an_unused_block_of_the_nets_own_file_is_a_warning(tmp_path):
    analysis = analysed("input 3x8x8\nused(2)", tmp_path,
                        "block used(c) { conv 1x1 c }\nblock spare(c) { conv 1x1 c }")
    (warning,) = analysis.diagnostics
    assert (warning.severity, warning.message) == ("warning", "block 'spare' is never used")
    assert warning.span.line == 2 and not analysis.errors
    library = analyse(__import__("conftest").ROOT / "nets/vgg_a.arch")
    assert library.diagnostics == []  # lib/vgg.arch's blocks are there to be picked from


def test_a_mistake_in_a_block_used_often_is_reported_once(tmp_path):
    with pytest.raises(ArchError) as caught:
        analysed("input 3x8x8\nb(4)\nb(5)\nb(6)\nconv 1x1 2 relu linear", tmp_path,
                 "block b(c) { conv 1x1 c relu relu }")
    messages = [d.message for d in caught.value.diagnostics()]
    assert messages == ["flag 'relu' given twice", "'linear' contradicts 'relu' given before it"]
    assert [n.span.line for n in caught.value.notes] == [4]  # at the first use, b(4)


# ---- after 2014: bn, residual sums, activations, strides and windows as parameters -------


def test_a_parameterised_input_size_scales_every_count_but_the_params(tmp_path):
    path = tmp_path / "net.arch"
    path.write_text("net n(size = 224) {\n input 3x(size)x(size)\n conv 3x3/2 8 pad=1\n gap\n"
                    " fc 10\n}\n")
    small, large = analyse(path), analyse(path, {"size": 448})
    assert tuple(small.shapes[small.graph.input]) == (3, 224, 224)
    assert tuple(large.shapes[large.graph.input]) == (3, 448, 448)
    conv = small.graph.rows[0].output
    assert large.costs[conv].macs == 4 * small.costs[conv].macs
    assert large.costs[conv].params == small.costs[conv].params


def test_a_window_passed_to_a_block_is_its_ops_window(tmp_path):
    header = "block mlpconv(k, c) { conv k c relu; conv 1x1 c relu }"
    body = "input 3x224x224\nmlpconv(11x11/4, 96)\nmlpconv(3x3, 32)"
    assert shapes_of(body, tmp_path, header) == [(96, 54, 54), (32, 52, 52)]


def test_stride_as_an_option_takes_a_block_parameter(tmp_path):
    header = "block down(c, s) { conv 3x3 c stride=s pad=1; maxpool 2x2 stride=s }"
    assert shapes_of("input 3x32x32\ndown(8, 2)\ndown(8, 1)", tmp_path, header) == \
        [(8, 8, 8), (8, 7, 7)]


def test_bn_params_and_buffers_and_a_conv_without_bias(tmp_path):
    analysis = analysed("input 3x8x8\nconv 3x3 16 bias=false\nbn eps=1e-3 momentum=0.01\n"
                        "leakyrelu slope=0.2", tmp_path)
    conv, bn, act = (r.output for r in analysis.graph.rows)
    assert (analysis.costs[conv].weights, analysis.costs[conv].biases) == (432, 0)
    assert (analysis.costs[bn].params, analysis.costs[bn].buffers) == (32, 32)
    assert analysis.costs[bn].weights == 0 and analysis.costs[bn].macs == 0
    assert analysis.graph.node(bn).op == ops.BatchNorm(1e-3, 0.01)
    assert analysis.graph.node(act).op == ops.Act("leakyrelu", 0.2)


def test_a_statement_repeated_x0_is_absent(tmp_path):
    """`x(ceil(depth) - 1)` at depth 1: the statement makes nothing and passes its input on
    (EfficientNet's depth multiplier); at the net's top level it leaves no row."""
    header = "block unit(c, n) { conv 3x3 c pad=1 relu; conv 1x1 c x(n) }"
    body = ("input 3x16x16\nconv 3x3 8 pad=1 x(d)\ns1: { unit(8, d); unit(16, 1) x(d) }\n"
            "unit(16, d) x(d + 1)\ngap\nfc 10")
    absent = analysed(body.replace("x(d)", "x0").replace("(d + 1)", "1").replace(
        "unit(8, d)", "unit(8, 0)").replace("unit(16, d)", "unit(16, 0)"), tmp_path, header)
    without = analysed("input 3x16x16\ns1: { unit(8, 0) }\nunit(16, 0)\ngap\nfc 10", tmp_path,
                       header)
    assert [r.name for r in absent.graph.rows] == [r.name for r in without.graph.rows] == [
        "s1", "unit1", "gap1", "fc1"]
    for key in ("params", "macs"):
        assert sum(getattr(c, key) for c in absent.costs.values()) == \
            sum(getattr(c, key) for c in without.costs.values())


def test_an_fc_without_bias(tmp_path):
    """`fc 5 bias=false`: nn.Linear(..., bias=False), the weights alone counted (an
    imported nn.Linear without a bias, or an exporter that drops a zero one)."""
    import torch

    import archc

    source = "input 3x8x8\ngap\nfc 5 bias=false relu\nfc 2"
    analysis = analysed(source, tmp_path)
    first, second = (r.output for r in analysis.graph.rows[1:])
    assert (analysis.costs[first].weights, analysis.costs[first].biases) == (15, 0)
    assert (analysis.costs[second].weights, analysis.costs[second].biases) == (10, 2)
    net = archc.compile(f"net n {{\n{source}\n}}\n").eval()
    assert [k for k in net.state_dict()] == ["fc1.weight", "fc2.weight", "fc2.bias"]
    x = torch.randn(2, 3, 8, 8)
    expected = torch.relu(x.mean((2, 3)) @ net.fc1.weight.T) @ net.fc2.weight.T + net.fc2.bias
    torch.testing.assert_close(net(x), expected)


def test_a_sum_with_an_identity_branch_adds_the_input(tmp_path):
    analysis = analysed("input 8x4x4\nsum {\n { conv 3x3 8 pad=1; bn }\n id\n}\nrelu", tmp_path)
    total = next(n for n in analysis.graph.order()
                 if isinstance(analysis.graph.node(n).op, ops.Sum))
    node = analysis.graph.node(total)
    assert node.op.identities == (False, True)
    assert node.inputs[1] == analysis.graph.input  # the shortcut is the sum's own input
    assert analysis.costs[total].macs == 0 and tuple(analysis.shapes[total]) == (8, 4, 4)


@pytest.mark.parametrize("flag", ["relu6", "sigmoid", "tanh", "hardswish", "leakyrelu"])
def test_activation_flags(tmp_path, flag):
    analysis = analysed(f"input 3x8x8\nconv 3x3 4 {flag}\nfc 2 {flag}", tmp_path)
    assert [analysis.graph.node(r.output).op.act for r in analysis.graph.rows] == [flag] * 2


# ---- issue 14: padding per dimension, repetitions, heads -----------------------------------


def test_pad_h_by_w_pads_rows_and_columns_apart_and_is_never_a_repetition(tmp_path):
    """`pad=0x3` read as `pad=0` then `x3` built three unpadded convs, silently."""
    analysis = analysed("input 768x17x17\nconv 1x7 192 pad=0x3\nconv 7x1 192 pad=3x0", tmp_path)
    assert [tuple(analysis.shapes[r.output]) for r in analysis.graph.rows] == \
        [(192, 17, 17), (192, 17, 17)]
    convs = [analysis.graph.node(n).op for n in analysis.graph.order()][1:]
    assert [(op.window, op.pad) for op in convs] == [((1, 7), (0, 3)), ((7, 1), (3, 0))]
    weights = [analysis.costs[n].weights for n in analysis.graph.order()][1:]
    assert weights == [768 * 192 * 7, 192 * 192 * 7]  # Inception-v3's 7x1 and 1x7, one each
    assert [r.repeat for r in analysis.graph.rows] == [1, 1]


def test_pad_h_by_w_lowers_to_torchs_padding_pair(tmp_path):
    from archc.codegen.emit import emit

    source = emit(analysed("input 8x9x9\nconv 1x7 4 pad=0x3\nmaxpool 3x3/1 pad=1x0",
                           tmp_path)).source
    assert "nn.Conv2d(8, 4, (1, 7), padding=(0, 3))" in source
    assert "nn.MaxPool2d(3, stride=1, padding=(1, 0))" in source


def test_a_repetition_can_be_a_parameter(tmp_path):
    path = tmp_path / "net.arch"
    path.write_text("block stage(c, blocks) { conv 3x3 c pad=1 x(blocks) }\n"
                    "net n(twice = 2) {\ninput 3x8x8\nstage(4, 3)\nstage(4, 2) x(twice)\n}\n")
    analysis = analyse(path)
    convs = [n for n in analysis.graph.order() if isinstance(analysis.graph.node(n).op, ops.Conv)]
    assert len(convs) == 3 + 2 * 2
    assert [r.repeat for r in analysis.graph.rows] == [1, 2]


def test_two_heads_from_one_label_are_both_in_the_module(tmp_path):
    import torch

    from archc.codegen.lower import lower

    analysis = analysed("input 3x8x8\na: conv 3x3 4 pad=1 relu\ngap\nfc 5\n"
                        "head h1 from a weight 0.3 { gap; fc 5 }\n"
                        "head h2 from a weight 0.2 { gap; fc 3 }", tmp_path)
    module = lower(analysis).module
    assert module.loss_weights == {"h1": 0.3, "h2": 0.2}
    out, aux = module.train()(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 5) and {k: v.shape for k, v in aux.items()} == \
        {"h1": (2, 5), "h2": (2, 3)}


def test_an_activation_is_a_block_parameter_as_a_flag_and_as_a_layer(tmp_path):
    header = ("block cba(c, act) { conv 3x3 c pad=1 bias=false; bn; act }\n"
              "block flagged(c, act = relu6) { conv 1x1 c act }")
    analysis = analysed("input 3x8x8\ncba(8, hardswish)\ncba(8, linear)\nflagged(4)\n"
                        "flagged(4, silu)", tmp_path, header)
    layers = [analysis.graph.node(n).op for n in analysis.graph.order()][1:]
    assert [ops.op_name(op) for op in layers] == ["conv", "bn", "hardswish", "conv", "bn",
                                                  "conv", "conv"]
    assert [op.act for op in layers if isinstance(op, ops.Conv)] == ["linear", "linear",
                                                                     "relu6", "silu"]
    from archc.codegen.emit import emit  # torch-free: it writes source text

    source = emit(analysis).source
    assert "F.hardswish(x)" in source and "F.silu(self.conv1(x))" in source
    assert "def __init__(self, in_channels, c):" in source  # the activation is no argument


def test_a_block_without_parameters_needs_no_parentheses(tmp_path):
    """Issue 35: `block u { ... }` said 'no body here' and `u x2` 'unknown op 'u'; did you mean
    'u'?'."""
    bare = analysed(" input 3x8x8\n u x2\n se\n gap\n fc 3", tmp_path,
                    "block u { conv 1x1 4 relu }\nblock se() { mul { id; { gap; conv 1x1 4 "
                    "sigmoid } } }")
    written = analysed(" input 3x8x8\n u() x2\n se()\n gap\n fc 3", tmp_path,
                       "block u() { conv 1x1 4 relu }\nblock se() { mul { id; { gap; conv 1x1 "
                       "4 sigmoid } } }")
    assert [tuple(bare.shapes[r.output]) for r in bare.graph.rows] == \
        [tuple(written.shapes[r.output]) for r in written.graph.rows]
    assert sum(c.params for c in bare.costs.values()) == \
        sum(c.params for c in written.costs.values()) == (3 * 4 + 4) + 2 * (4 * 4 + 4) + 4 * 3 + 3


def test_negative_real_numbers_are_arguments(tmp_path):
    """Issue 35: `scale -0.5`, `slope=-0.2` and `scale -1e-6` did not parse."""
    analysis = analysed(" input 3x8x8\n conv 1x1 4\n scale -0.5\n leakyrelu slope=-0.2\n"
                        " scale -1e-6\n gap", tmp_path)
    made = [analysis.graph.node(n).op for n in analysis.graph.order()]
    assert [op.init for op in made if isinstance(op, ops.LayerScale)] == [-0.5, -1e-6]
    assert [op.slope for op in made if isinstance(op, ops.Act)] == [-0.2]
