"""The triton backend on the nets people deploy now: depthwise convs, SE gates, new activations.

The plans of MobileNet-v2, EfficientNet-B0 and ConvNeXt-T are golden files (test_triton_backend's
test_plan); small nets made of
their blocks (lib/mobilenet.arch, lib/efficientnet.arch, lib/convnext.arch) run under Triton's
interpreter and equal the torch backend in eval and training mode, gradients included.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from conftest import ROOT

import archc
from archc import ops
from archc.backends.activation import ACTS
from archc.backends.triton.plan import TRITON_ACTS, plan
from archc.codegen.lower import training_loss
from archc.pipeline import analyse

TINY_MOBILENET = """use "lib/mobilenet.arch"
net tiny_mobilenet(classes = 4) {
    input 3x12x12
    conv 3x3/2 8 pad=1 bias=false; bn; relu6
    expand_dw_project(2, 8, 2)
    inverted_res(3)
    gap
    fc classes
}
"""
TINY_EFFICIENTNET = """use "lib/efficientnet.arch"
net tiny_efficientnet(classes = 4) {
    input 3x12x12
    default bn eps=1e-3
    conv 3x3/2 8 pad=1 bias=false; bn; silu
    mbconv(4, 5, 16, 2)
    mbconv_res(2, 3, 0.0)
    gap
    fc classes
}
"""
TINY_CONVNEXT = """use "lib/convnext.arch"
net tiny_convnext(classes = 4) {
    input 3x12x12
    default layernorm eps=1e-6
    conv 2x2/2 16; layernorm
    cn_block(16, 0.0)
    gap
    layernorm
    fc classes
}
"""


def test_the_plans_activations_are_the_kernels():
    assert TRITON_ACTS == ACTS[1:]  # every activation but "linear"


def test_mobilenets_depthwise_convs_take_their_bn_and_relu6():
    analysis = analyse(ROOT / "nets/mobilenet_v2.arch")
    steps = plan(analysis).steps
    depthwise = [s for s in steps if s.kind == "dwconv"]
    assert len(depthwise) == 17  # one a block: dw1 and 16 inverted residuals
    assert all(s.bn is not None and s.act == "relu6" and len(s.tail) == 2 for s in depthwise)
    expansions = [s for s in steps if s.kind == "gemm" and s.act == "relu6"]
    assert len(expansions) == 16 + 1  # each block's 1x1 expansion, and the 1280-wide 1x1


@pytest.mark.parametrize("source", [TINY_MOBILENET, TINY_EFFICIENTNET, TINY_CONVNEXT],
                         ids=["mobilenet", "efficientnet", "convnext"])
def test_triton_backend_equals_torch_backend(source, monkeypatch):
    """Same state_dict; same outputs in train and eval mode; same gradients."""
    monkeypatch.chdir(ROOT / "nets")
    torch.manual_seed(0)
    reference = archc.compile(source, backend="torch")
    fused = archc.compile(source, backend="triton")
    fused.load_state_dict(reference.state_dict())
    with torch.no_grad():  # statistics and scales far from 1 and 0: a wrong fold must show
        for name, tensor in (*reference.named_buffers(), *reference.named_parameters()):
            if name.endswith(("running_mean", "running_var", ".scale")):
                tensor.uniform_(0.5, 1.5)
        fused.load_state_dict(reference.state_dict())
    x, labels = torch.randn(2, 3, 12, 12), torch.tensor([1, 3])
    outputs = []
    for module in (reference, fused):
        out = module.train()(x)
        training_loss(module, out, labels).backward()
        with torch.no_grad():
            outputs.append((out, module.eval()(x)))
    (train_a, eval_a), (train_b, eval_b) = outputs
    torch.testing.assert_close(train_b, train_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eval_b, eval_a, rtol=1e-5, atol=1e-5)
    grads = dict(fused.named_parameters())
    for name, p in reference.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-4, atol=1e-5, msg=name)
    kernels = launched(fused, x)
    assert set(kernels) >= {"dwconv_kernel", "conv1x1_kernel"}
    if source == TINY_EFFICIENTNET:
        # the SE gates, multiplied in by the projection GEMMs; the squeezes, summed by the
        # depthwise convs: the one gap launched is the head's
        assert kernels["conv1x1_kernel gated"] == kernels["dwconv_kernel squeezed"] == 2
        assert kernels["global_avg_pool_kernel"] == 1
    # the one block that keeps its size: its sum ran the projection GEMM with the shortcut
    assert kernels["conv1x1_kernel shortcut"] == 1


def launched(module: torch.nn.Module, x: torch.Tensor) -> Counter[str]:
    """The kernels an eval-mode forward launches, counted (a GEMM with a gate also as
    "... gated", one with a shortcut as "... shortcut", a depthwise conv that sums a squeeze
    as "... squeezed")."""
    from archc.backends.triton import conv1x1, dwconv, global_avg_pool

    names: Counter[str] = Counter()
    with pytest.MonkeyPatch.context() as patch:
        for kernel_file in (conv1x1, dwconv, global_avg_pool):
            real = kernel_file.launch

            def counted(kernel, *args, real=real, **kwargs):
                name = getattr(kernel, "fn", kernel).__name__
                names[name] += 1
                for flag, said in (("HAS_GATE", "gated"), ("SQUEEZE", "squeezed"),
                                   ("HAS_RESIDUAL", "shortcut")):
                    if kwargs.get(flag):
                        names[f"{name} {said}"] += 1
                return real(kernel, *args, **kwargs)

            patch.setattr(kernel_file, "launch", counted)
        with torch.no_grad():
            module.eval()(x)
    return names


def test_convnexts_block_is_three_kernels_a_droppath_and_the_sum_that_runs_the_last():
    """dwconv + layer norm; GEMM + GELU; GEMM + layer scale, deferred; droppath (a torch op,
    nothing at inference); the sum, which runs the deferred GEMM with the shortcut."""
    analysis = analyse(ROOT / "nets/convnext_tiny.arch")
    steps = plan(analysis).steps
    kinds = [s.kind for s in steps]
    first = kinds.index("dwconv")
    assert kinds[first:first + 5] == ["dwconv", "gemm", "gemm", "torch", "sum"]
    dw, expand, project = steps[first:first + 3]
    assert project.deferred == steps[first + 4].nodes[0]
    op = analysis.graph.node
    assert isinstance(op(dw.norm).op, ops.LayerNorm) and dw.tail == (dw.norm,)
    assert expand.act == "gelu" and not expand.tail
    assert isinstance(op(project.scale).op, ops.LayerScale) and project.tail == (project.scale,)
    assert sum(1 for s in steps if s.norm is not None) == 18  # every block's


def test_efficientnets_se_gates_are_multiplied_in_by_the_projection_gemm():
    analysis = analyse(ROOT / "nets/efficientnet_b0.arch")
    steps = plan(analysis).steps
    gates = [i for i, s in enumerate(steps) if s.kind == "gate"]
    assert len(gates) == 16  # one a block
    for i in gates:
        (user,) = analysis.graph.users(steps[i].nodes[0])
        assert steps[i + 1].kind == "gemm" and steps[i + 1].nodes == (user,)
        assert analysis.graph.node(user).blocks != analysis.graph.node(steps[i].nodes[0]).blocks


@pytest.mark.parametrize("net, sums", [("mobilenet_v2", 10), ("efficientnet_b0", 9),
                                       ("mnasnet1_0", 10)])
def test_the_shortcut_sums_across_blocks_run_the_projection_gemm(net, sums):
    """Each inverted residual's sum (a line of the block's caller) runs the projection GEMM
    of the block, deferred, with the shortcut (the block's input) in its epilogue."""
    analysis = analyse(ROOT / "nets" / f"{net}.arch")
    steps = plan(analysis).steps
    summing = [s for s in steps if s.kind == "sum"]
    assert len(summing) == sums
    for step in summing:
        (gemm,) = [s for s in steps if s.deferred == step.nodes[0]]
        assert gemm.kind == "gemm" and gemm.act == "linear" and gemm.residual is None
        (shortcut,) = set(analysis.graph.node(step.nodes[0]).inputs) - {step.input}
        assert shortcut < gemm.nodes[0]
        assert analysis.graph.node(gemm.nodes[0]).blocks != \
            analysis.graph.node(step.nodes[0]).blocks


def test_efficientnets_se_squeezes_are_summed_by_the_depthwise_convs():
    analysis = analyse(ROOT / "nets/efficientnet_b0.arch")
    steps = plan(analysis).steps
    squeezing = [s for s in steps if s.squeeze is not None]
    assert len(squeezing) == 16 and all(s.kind == "dwconv" for s in squeezing)
    for step in squeezing:
        gap = next(s for s in steps if s.nodes == (step.squeeze,))
        assert gap.kind == "gap" and gap.input == step.output
        assert f"%{step.nodes[0]}'s epilogue" in gap.why
    head = [s for s in steps if s.kind == "gap" and "epilogue" not in s.why]
    assert len(head) == 1  # the classifier's, after a 1x1 GEMM


def test_the_emitted_mobilenet_calls_the_depthwise_kernel_with_its_bn(archc):
    status, source, err = archc("compile", "nets/mobilenet_v2.arch", "--backend", "triton")
    assert status == 0, err
    # the dw1 block's class and expand_dw_project's two: as a block of its own, and inside an
    # inverted residual, where its projection is deferred to the caller's sum
    assert source.count("K.dwconv(") == 3
    assert source.count("deferred=True") == source.count("K.add(") == 1
    assert "K.dwconv(x, self.conv2, bn=self.bn2, act='relu6')" in source


@pytest.mark.parametrize("source", [pytest.param(TINY_EFFICIENTNET, marks=pytest.mark.slow),
                                    pytest.param(TINY_CONVNEXT, marks=pytest.mark.slow)],
                         ids=["efficientnet", "convnext"])  # test_triton_backend's runs by default
def test_torch_compile_runs_the_new_kernels_forward_and_backward(source, monkeypatch):
    """The depthwise op (its layer norm too), the activations and the scale fold through
    torch.compile: the custom ops' fakes and backwards, in train mode and in eval mode."""
    monkeypatch.chdir(ROOT / "nets")
    torch.manual_seed(0)
    net = archc.compile(source, backend="triton")
    x = torch.randn(2, 3, 12, 12)
    eager = net.train()(x)
    eager.sum().backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad()
    compiled = torch.compile(net, backend="aot_eager")
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], rtol=1e-4, atol=1e-5, msg=name)
    with torch.no_grad():
        want = net.eval()(x)
        torch.testing.assert_close(compiled(x), want, rtol=1e-5, atol=1e-5)
