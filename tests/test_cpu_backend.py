"""The cpu backend (the module inside archc.freeze's engine): its plan, and equality with the
torch backend on the shipped nets (same state_dict; same outputs in eval mode, where its convs
run as oneDNN primitives with the bn folded, and in train mode, where it runs torch's ops);
its reordered
weights follow the weights; where oneDNN does not run it falls back to torch's ops."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from test_triton_backend import TINY_GOOGLENET, TINY_NIN, TINY_RESNET

import archc
from archc.backends import cpu
from archc.backends.cpu.plan import plan
from archc.codegen.lower import compile_net, training_loss
from archc.pipeline import analyse

# Every post-op oneDNN applies among them: relu (GoogLeNet, NIN, VGG, ResNet), relu6
# (MobileNet-v2), silu and sigmoid (EfficientNet's SE), hardswish (MobileNet-v3), and the
# local response norm (VGG-A-LRN, GoogLeNet); ConvNeXt's 7x7 depthwise with its bias.
NETS = ["googlenet", "nin_cifar10", "vgg_a_lrn", "resnet50", "mobilenet_v2", "efficientnet_b0",
        "mobilenet_v3_small", "convnext_tiny"]


def _pair(path, seed: int = 0):
    """The torch backend's module with perturbed batch-norm statistics, and the cpu backend's
    with its state_dict loaded."""
    torch.manual_seed(seed)
    reference = archc.compile(path, backend="torch", heads=False, logits=True)
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # not the identity that init leaves
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    fused = compile_net(path, "cpu", heads=False, logits=True)
    assert list(fused.state_dict()) == list(reference.state_dict())
    fused.load_state_dict(reference.state_dict())
    return reference, fused


def _input(path, batch: int = 1) -> torch.Tensor:
    analysis = analyse(path)
    return torch.randn(batch, *analysis.shapes[analysis.graph.input])


@pytest.mark.parametrize("name", NETS)
def test_cpu_backend_equals_torch_backend_in_eval_with_every_conv_and_fc_on_onednn(name):
    path = ROOT / "nets" / f"{name}.arch"
    reference, fused = _pair(path)
    x = _input(path)
    with torch.no_grad():
        expected, got = reference.eval()(x), fused.eval()(x)
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * scale)
    layers = [m for m in fused.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert all(m in cpu._packed for m in layers)  # each ran as one oneDNN primitive


@pytest.mark.parametrize("source", [TINY_GOOGLENET, TINY_NIN, TINY_RESNET],
                         ids=["googlenet", "nin", "resnet"])
def test_cpu_backend_trains_as_the_torch_backend(source, monkeypatch):
    """Train mode runs torch's ops: same outputs, gradients and running statistics."""
    monkeypatch.chdir(ROOT / "nets")
    torch.manual_seed(0)
    reference = archc.compile(source, backend="torch")
    fused = compile_net(source, "cpu")
    fused.load_state_dict(reference.state_dict())
    for module in (*reference.modules(), *fused.modules()):
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # masks drawn in memory order differ on channels-last tensors
    x, labels = torch.randn(2, 3, 12, 12), torch.tensor([1, 3])
    outputs = []
    for module in (reference, fused):
        out = module.train()(x)
        training_loss(module, out, labels).backward()
        outputs.append(out[0] if isinstance(out, tuple) else out)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-6)
    grads = dict(fused.named_parameters())
    for name, p in reference.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    stats = fused.state_dict()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(stats[key], value, msg=key)


def test_reordered_weights_follow_load_state_dict_and_in_place_updates():
    path = ROOT / "nets/resnet_digits.arch"
    reference, fused = _pair(path)
    x = _input(path, batch=2)
    with torch.no_grad():
        fused.eval()(x)
        other, _ = _pair(path, seed=1)
        fused.load_state_dict(other.state_dict())  # new tensors copied into the same storage
        torch.testing.assert_close(fused(x), other.eval()(x), rtol=1e-4, atol=1e-5)
        conv = next(m for m in fused.modules() if isinstance(m, torch.nn.Conv2d))
        twin = next(m for m in other.modules() if isinstance(m, torch.nn.Conv2d))
        for module in (conv, twin):  # an optimiser's step: the same tensor, a new version
            module.weight.mul_(1.5)
        bn = [m for m in fused.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for module in (bn[0], [m for m in other.modules()
                               if isinstance(m, torch.nn.BatchNorm2d)][0]):
            module.running_var.mul_(3.0)
        torch.testing.assert_close(fused(x), other(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fused(x[:1]), other(x[:1]), rtol=1e-4, atol=1e-5)


def test_a_parametrized_weight_falls_back_to_torchs_ops():
    """weight_norm moves a conv's weight out of its parameters: the cache cannot key on it,
    so that conv runs as torch's, with the parametrized weight."""
    path = ROOT / "nets/resnet_digits.arch"
    reference, fused = _pair(path)
    for module in (reference, fused):
        torch.nn.utils.parametrizations.weight_norm(module.stem[0])
        module.eval()
    with torch.no_grad():
        for module in (reference, fused):
            module.stem[0].parametrizations.weight.original0.mul_(0.5)
        x = _input(path, batch=2)
        torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)


def test_float64_and_autograd_in_eval_fall_back_to_torchs_ops():
    path = ROOT / "nets/resnet_digits.arch"
    reference, fused = _pair(path)
    reference.eval(), fused.eval()
    x = _input(path, batch=2)
    with torch.no_grad():
        torch.testing.assert_close(fused.double()(x.double()), reference.double()(x.double()))
    reference.float(), fused.float()
    inputs = [x.clone().requires_grad_() for _ in range(2)]
    for module, leaf in zip((reference, fused), inputs):
        module(leaf).sum().backward()
    torch.testing.assert_close(inputs[1].grad, inputs[0].grad, rtol=1e-4, atol=1e-6)


def test_the_plan_fuses_exactly_the_activations_the_backend_applies_as_post_ops():
    from archc.backends.cpu.plan import POST_OP_ACTS  # the plan's copy: it imports no torch

    assert set(POST_OP_ACTS) == set(cpu.POST_OPS) and set(cpu.TORCH_ACTS) - {"linear"} == \
        set(cpu.POST_OPS)


@pytest.mark.parametrize("act", ["linear", *cpu.POST_OPS])
def test_every_post_op_equals_torchs_activation(act):
    torch.manual_seed(0)
    conv, fc = torch.nn.Conv2d(6, 8, 3, padding=1).eval(), torch.nn.Linear(6, 8).eval()
    bn = torch.nn.BatchNorm2d(8).eval()
    bn.running_var.uniform_(0.5, 2.0)
    image = 3 * torch.randn(2, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    shortcut = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        expected = cpu.TORCH_ACTS[act](bn(conv(image)) + shortcut)
        torch.testing.assert_close(cpu.conv(image, conv, bn, shortcut, act), expected,
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(cpu.conv(image, conv, act=act),
                                   cpu.TORCH_ACTS[act](conv(image)), rtol=1e-5, atol=1e-5)
        flat = 3 * torch.randn(3, 6)
        torch.testing.assert_close(cpu.linear(flat, fc, act), cpu.TORCH_ACTS[act](fc(flat)),
                                   rtol=1e-5, atol=1e-5)
    assert conv in cpu._packed and fc in cpu._packed


@pytest.mark.parametrize("size,beta", [(5, 0.75), (4, 0.5), (3, 1.0)])
def test_local_response_norm_equals_torchs(size, beta):
    lrn = torch.nn.LocalResponseNorm(size, alpha=1e-3, beta=beta, k=2.0)
    x = 10 * torch.randn(2, 7, 5, 6)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = x.contiguous(memory_format=layout)
        torch.testing.assert_close(cpu.local_response_norm(x, lrn), lrn(x))


def test_keep_freed_memory_is_applied_once_and_can_be_turned_off(monkeypatch):
    import platform

    assert cpu.keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
    monkeypatch.setenv("ARCHC_KEEP_CPU_MEMORY", "0")
    assert cpu.keep_freed_memory.__wrapped__() is False


@pytest.mark.parametrize("name", ["googlenet", "resnet50", "mobilenet_v2", "efficientnet_b0"])
def test_cpu_plan(archc, golden, name):
    status, out, err = archc("compile", f"nets/{name}.arch", "--backend", "cpu", "--plan")
    assert status == 0, err
    golden(ROOT / "tests/golden/plan" / f"{name}_cpu.txt", out)


def test_the_cpu_plan_keeps_a_blocks_sum_with_its_callers_shortcut_a_torch_op():
    """MobileNet-v2's inverted residual adds its input to what its inner block returns: the
    projection's bn is folded, the sum stays in the caller's forward()."""
    steps = plan(analyse(ROOT / "nets/mobilenet_v2.arch")).steps
    convs = [s for s in steps if s.kind == "onednn" and s.why.startswith("oneDNN conv")]
    assert len(convs) == 52 and all(s.bn is not None for s in convs)
    assert not any(s.residual is not None for s in convs)
    assert sum(s.why == "sum: a torch op" for s in steps) == 10


@pytest.mark.parametrize("source", [TINY_NIN, TINY_RESNET], ids=["nin", "resnet"])
def test_torch_compile_traces_the_cpu_backend_as_torchs_ops(monkeypatch, source):
    """Under torch.compile the calls are torch's ops (Inductor fuses them itself): no graph
    break on the weight cache or on the forward that owns its activations (ResNet's), no
    oneDNN primitive of archc's in the graph."""
    import torch._dynamo

    monkeypatch.chdir(ROOT / "nets")
    torch._dynamo.reset()
    reference, fused = _pair(source)
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():  # as inference runs: every check of the fast path is reached
        explanation = torch._dynamo.explain(fused.eval())(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(fused, backend="eager")(x), reference.eval()(x),
                                   rtol=1e-5, atol=1e-6)
    assert not any(isinstance(m, torch.nn.Conv2d) and m in cpu._packed for m in fused.modules())


def test_emitted_cpu_source(archc, golden):
    status, source, err = archc("compile", "nets/resnet50.arch", "--backend", "cpu")
    assert status == 0, err
    assert "from archc.backends import cpu as C" in source
    assert "= C.conv(\n            residual, self.residual.conv3, bn=self.residual.bn3, " \
        "residual=x, act='relu',\n            into_residual=True)" in source  # a bottleneck's
    # last conv, its bn, shortcut (its sum written over the block's input) and ReLU
    assert max(map(len, source.splitlines())) <= 100
    golden(ROOT / "tests/golden/emit/resnet50_cpu.py", source)


def test_torch_export_and_jit_trace_record_torchs_ops(monkeypatch):
    monkeypatch.chdir(ROOT / "nets")
    reference, fused = _pair(TINY_NIN)
    reference.eval(), fused.eval()
    x = torch.randn(2, 3, 12, 12)
    exported = torch.export.export(fused, (x,))
    targets = [str(node.target) for node in exported.graph.nodes]
    assert "aten.conv2d.default" in targets and not any("mkldnn" in t for t in targets)
    traced = torch.jit.trace(fused, x)
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), reference(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(traced(x), reference(x), rtol=1e-5, atol=1e-6)
