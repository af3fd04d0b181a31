"""Lowering to PyTorch: counts, run-time shapes, hand-written references, the emitted file."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from conftest import ROOT, nets, sweep
from hypothesis import given, settings
from hypothesis import strategies as st
from references import BasicBlock, Bottleneck, GoogLeNet, Inception, NinCifar10, ResNet, VggA
from torch import nn
from torch.nn import functional as F

import archc
from archc.codegen.lower import lower, training_loss
from archc.errors import ArchError
from archc.pipeline import analyse
from archc.report.stats import stats

torch.set_num_threads(2)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def image(analysis, batch=1, seed=0):
    torch.manual_seed(seed)
    return torch.randn(batch, *analysis.shapes[analysis.graph.input])


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters in declaration order (the references declare layers in net order)."""
    pairs = list(zip(source.parameters(), target.parameters(), strict=True))
    with torch.no_grad():
        for a, b in pairs:
            assert a.shape == b.shape
            b.copy_(a)


@pytest.mark.parametrize("name", sweep(nets()))
def test_parameter_counts_match_the_cost_pass(name):
    analysis = analyse(ROOT / "nets" / name)
    data = stats(analysis)
    assert n_params(lower(analysis).module) == data.training_total.params
    if analysis.graph.heads:
        assert n_params(lower(analysis, heads=False).module) == data.total.params
    else:
        assert data.training_total == data.total


@pytest.mark.parametrize("name", sweep(nets()))
def test_runtime_shapes_equal_inferred_shapes(name):
    analysis = analyse(ROOT / "nets" / name)
    # Training mode runs the heads: Inception-v3's has a batch norm of 1x1 maps, which torch
    # refuses to train on one image.
    assert_runtime_shapes(analysis, batch=2 if analysis.graph.heads else 1)


def assert_runtime_shapes(analysis, batch: int = 1) -> None:
    """Run the lowered net (training mode: heads too) and compare every module's output shape,
    and the net's, with the inferred ones; fc outputs are N x C for an inferred C x 1 x 1."""
    lowered = lower(analysis)
    seen = {}
    modules = dict(lowered.module.named_modules())
    for qualified, node in lowered.emitted.layer_nodes.items():
        modules[qualified].register_forward_hook(
            lambda m, i, out, node=node: seen.__setitem__(node, tuple(out.shape[1:])))
    with torch.no_grad():
        out = lowered.module.train()(image(analysis, batch))
    assert set(seen) == set(lowered.emitted.layer_nodes.values())
    seen[analysis.graph.output] = tuple((out[0] if isinstance(out, tuple) else out).shape[1:])
    for node, shape in seen.items():
        c, h, w = analysis.shapes[node]
        assert shape in ((c, h, w), (c,)), (node, shape)
    assert n_params(lowered.module) == stats(analysis).training_total.params


NESTED = """
block pair(c) { conv 1x1 c; conv 3x3 c pad=1 }
block tower(c) {
    concat {
        pair(c) x2
        { concat { conv 1x1 c; maxpool 3x3/1 pad=1 }; conv 1x1 c }
        { avgpool 3x3/1 pad=1 round=ceil; pair(c) }
    }
}
net nested(k = 3) {
    input 4x12x12
    default conv relu
    t1: tower(k) x2
    maxpool 2x2/2
    side: { fc 16 relu; dropout 0.5 }
    conv 1x1 8
    gap
    softmax
    head h1 from t1 weight 0.25 { pair(2); gap; fc 5 }
    head h2 from side weight 0.5 { concat { fc 3; fc 4 }; softmax }
}
"""


def test_nested_blocks_repeats_concats_and_heads_lower_correctly(tmp_path):
    analysis = analyse(tmp_path / "nested.arch", text=NESTED)
    assert_runtime_shapes(analysis, batch=2)
    lowered = lower(analysis)
    module = load_emitted(lowered.emitted.source, tmp_path / "nested_net.py")
    twin = getattr(module, lowered.emitted.class_name)()
    twin.load_state_dict(lowered.module.state_dict())
    x = image(analysis, 2)
    torch.manual_seed(3)
    a, aux_a = lowered.module.train()(x)
    torch.manual_seed(3)
    b, aux_b = twin.train()(x)
    assert torch.equal(a, b) and aux_a.keys() == aux_b.keys() == {"h1", "h2"}
    assert all(torch.equal(aux_a[k], aux_b[k]) for k in aux_a)


def test_training_mode_returns_heads_and_eval_mode_does_not():
    torch.manual_seed(0)
    net = archc.compile(ROOT / "nets/googlenet.arch")
    x = torch.randn(2, 3, 224, 224)
    net.train()
    out, aux = net(x)
    assert out.shape == (2, 1000) and set(aux) == {"aux1", "aux2"}
    assert aux["aux1"].shape == (2, 1000) and net.loss_weights == {"aux1": 0.3, "aux2": 0.3}
    assert not torch.allclose(out.sum(1), torch.ones(2))  # logits in training
    net.eval()
    with torch.no_grad():
        probs = net(x)
    assert probs.shape == (2, 1000)
    assert torch.allclose(probs.sum(1), torch.ones(2))  # the final softmax runs in eval
    deployed = archc.compile(ROOT / "nets/googlenet.arch", heads=False).train()
    assert isinstance(deployed(x), torch.Tensor)


def test_training_loss_weighs_the_heads():
    torch.manual_seed(0)
    net = archc.compile(ROOT / "nets/googlenet.arch").train()
    x, y = torch.randn(2, 3, 224, 224), torch.tensor([3, 999])
    torch.manual_seed(1)
    out, aux = net(x)
    ce = F.cross_entropy
    want = ce(out, y) + 0.3 * ce(aux["aux1"], y) + 0.3 * ce(aux["aux2"], y)
    torch.testing.assert_close(training_loss(net, (out, aux), y), want)
    assert training_loss(net, out, y) == ce(out, y)
    training_loss(net, (out, aux), y).backward()
    assert net.aux1.fc2.weight.grad is not None and net.conv1.weight.grad.abs().sum() > 0


def test_initialisation_is_deterministic_under_manual_seed():
    torch.manual_seed(7)
    a = archc.compile(ROOT / "nets/nin_cifar10.arch")
    torch.manual_seed(7)
    b = archc.compile(ROOT / "nets/nin_cifar10.arch")
    torch.manual_seed(8)
    c = archc.compile(ROOT / "nets/nin_cifar10.arch")
    for (name, p), q, r in zip(a.state_dict().items(), b.state_dict().values(),
                               c.state_dict().values()):
        assert torch.equal(p, q), name
        if name.endswith("weight"):
            assert not torch.equal(p, r), name
        else:
            assert not p.any(), name  # biases start at zero
    bound = (6 / (192 + 3 * 5 * 5)) ** 0.5  # Xavier-uniform, conv 5x5 3 -> 192
    assert a.mlpconv1.conv.weight.abs().max() <= bound


def test_compile_accepts_source_text_and_rejects_errors():
    net = archc.compile("net tiny {\n input 3x8x8\n conv 3x3 4 relu\n gap\n}\n")
    assert net(torch.randn(1, 3, 8, 8)).shape == (1, 4)
    with pytest.raises(ArchError, match="larger than its input"):
        archc.compile("net bad {\n input 3x2x2\n conv 3x3 4\n}\n")


# ---- hand-written references (tests/references.py), independent of archc ----------------


# Bitwise equal, but for NIN: archc applies its final softmax to N x 10 x 1 x 1 and then
# flattens, the reference flattens first, and the two softmax kernels may round the last bit
# differently (seen: 7e-9 on probabilities of 0.1), so NIN is compared at float32's 1.3e-6.
@pytest.mark.parametrize("source, reference, shape, rtol", [
    ("nets/nin_cifar10.arch", NinCifar10, (4, 3, 32, 32), 1.3e-6),
    ("nets/vgg_a.arch", VggA, (1, 3, 224, 224), 0),
    ("nets/googlenet.arch", GoogLeNet, (1, 3, 224, 224), 0),
    ("net one_inception {\n input 192x28x28\n default conv relu pad=same\n"
     " 3a: inception(64, 96, 128, 16, 32, 32)\n}\n",
     lambda: Inception(192, 64, 96, 128, 16, 32, 32), (2, 192, 28, 28), 0),
])
def test_equals_hand_written_reference(source, reference, shape, rtol, monkeypatch):
    monkeypatch.chdir(ROOT / "nets")  # so that the inception text finds lib/inception.arch
    text = source if "{" in source else (ROOT / source).read_text()
    if "{" in source:
        text = 'use "lib/inception.arch"\n' + text
    compiled = archc.compile(text, backend="torch", heads=False).eval()  # to the bit
    ref = reference().eval()
    copy_weights(compiled, ref)
    torch.manual_seed(1)
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), ref(x), rtol=rtol, atol=0)


@pytest.mark.parametrize("name, block, layers", [
    ("resnet18", BasicBlock, [2, 2, 2, 2]),
    pytest.param("resnet50", Bottleneck, [3, 4, 6, 3], marks=pytest.mark.slow)])
def test_resnets_equal_hand_written_in_train_and_eval_mode(name, block, layers):
    """Same weights: the same training-mode output, gradients and running statistics (batch
    norm's buffers), then the same eval-mode output."""
    compiled = archc.compile(ROOT / f"nets/{name}.arch", backend="torch")
    ref = ResNet(block, layers)
    copy_weights(compiled, ref)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    outputs = [module.train()(x) for module in (compiled, ref)]
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    for out in outputs:
        out.square().mean().backward()
    for (key, a), b in zip(compiled.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=key)
    for (key, a), b in zip(compiled.named_buffers(), ref.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=key)
    with torch.no_grad():
        torch.testing.assert_close(compiled.eval()(x), ref.eval()(x), rtol=1e-5, atol=1e-5)


# ---- the emitted file ----------------------------------------------------------------------


def load_emitted(source: str, path) -> object:
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sweep(nets()))
def test_emitted_file_round_trip(name, tmp_path, archc):
    status, source, err = archc("compile", f"nets/{name}")
    assert status == 0, err
    imports = [line for line in source.splitlines() if line.startswith(("import", "from"))]
    assert imports == ["import torch", "from torch import nn",
                       "from torch.nn import functional as F"] + \
        (["import math"] if "math." in source else [])  # a width's floor or ceil
    lowered = lower(analysis := analyse(ROOT / "nets" / name))
    in_memory = lowered.module.eval()
    emitted = load_emitted(source, tmp_path / f"net_{name[:-5]}.py")
    from_file = getattr(emitted, lowered.emitted.class_name)().eval()
    from_file.load_state_dict(in_memory.state_dict())
    x = image(analysis)
    with torch.no_grad():
        assert torch.equal(in_memory(x), from_file(x))


# Hostile labels, block, net and head names (parameters are the class's keywords: those named
# as Python's or the emitter's own are refused where declared, tests/test_emit.py).
HOSTILE = """
block lambda(imports, selves) {
    conv 1x1 imports
    F: conv 1x1 selves
}
net class(w = 4, t = 2) {
    input 3x8x8
    __init__: conv 3x3 w pad=1
    forward: lambda(t, w)
    training: { conv 1x1 w; conv 1x1 w }
    self: conv 1x1 w
    0day: lambda(2, 3) x2
    super: fc 10
    head nn from forward weight 0.5 { fc 3 }
    head __class__ from self weight 0.5 { fc 3 }
}
"""


def test_hostile_names_cannot_inject_code(tmp_path):
    analysis = analyse(tmp_path / "hostile.arch", text=HOSTILE)
    lowered = lower(analysis)
    source = lowered.emitted.source
    import re

    overwritten = re.findall(r"self\.(__\w+__|training|forward|F|torch|x) = ", source)
    assert overwritten == []
    assert "self.layer___class__ = " in source and "self.forward_ = " in source
    module = load_emitted(source, tmp_path / "hostile_net.py")
    net = getattr(module, lowered.emitted.class_name)()
    net.load_state_dict(lowered.module.state_dict())
    x = torch.randn(2, 3, 8, 8)
    net.train()
    out, aux = net(x)
    assert out.shape == (2, 10) and set(aux) == {"nn", "__class__"}
    assert n_params(net) == stats(analysis).training_total.params
    assert "torch" in sys.modules and net.training is True


# ---- random small nets: inferred shapes and parameter counts against PyTorch at run time ----

LAYERS = st.sampled_from([
    "conv 3x3 {c} pad=same relu", "conv 1x1 {c}", "conv 5x5/2 {c} pad=2", "conv 3x3 {c} groups=1",
    "maxpool 2x2/2", "maxpool 3x3/2 round=ceil", "avgpool 3x3/2 pad=1 round=ceil",
    "maxpool 3x3/1 pad=1", "lrn 3", "dropout 0.3", "fc {c} relu", "softmax", "flatten",
    "concat {{ conv 1x1 {c}; {{ maxpool 3x3/1 pad=1; conv 1x1 2 }} }}",
    "bn", "relu6", "leakyrelu slope=0.1", "conv 3x3 {c} stride=2 bias=false hardswish",
    "sum {{ {{ conv 3x3 {c} pad=1 bias=false; bn; relu }}; {{ conv 1x1 {c} }} }}",
    "sum {{ {{ bn; tanh }}; id }}",
])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(LAYERS, st.integers(1, 6)), min_size=1, max_size=8),
       st.integers(1, 3), st.integers(5, 20))
def test_random_nets_run_with_the_inferred_shapes(layers, channels, size):
    body = "\n".join(template.format(c=c) for template, c in layers)
    try:
        analysis = analyse("random.arch", text=f"net r {{\n input {channels}x{size}x{size}\n"
                                                f"{body}\n}}\n")
    except ArchError:
        return  # e.g. a window larger than its input: archc refused it, as it should
    assert_runtime_shapes(analysis, batch=2)


def test_an_activation_layer_keeps_a_flat_value_flat():
    """Found by the random nets: flatten, relu6, conv read the flat value twice as 4-D."""
    net = archc.compile("net r {\n input 1x5x5\n flatten\n relu6\n conv 3x3 1 pad=same\n}\n")
    assert net(torch.randn(2, 1, 5, 5)).shape == (2, 1)


def test_a_compiled_net_checks_its_input_shape():
    net = archc.compile(ROOT / "nets/nin_cifar10.arch")
    with pytest.raises(ValueError, match=r"this net takes N x 3 x 32 x 32 images, got "
                                         r"\(2, 3, 224, 224\)"):
        net(torch.randn(2, 3, 224, 224))
    with pytest.raises(ValueError, match="got \\(3, 32, 32\\)"):
        net(torch.randn(3, 32, 32))


def test_a_net_too_big_for_memory_is_refused_before_allocating(monkeypatch):
    import archc.codegen.lower

    monkeypatch.setattr(archc.codegen.lower, "available_memory", lambda: 2**30)  # 1 GiB
    big = "net big {\n input 1x1x1\n fc 20000\n fc 20000\n}\n"  # 400,060,000 params
    with pytest.raises(ArchError, match=r"the net's 400,060,000 parameters need 1\.5 GiB in "
                                        r"float32; this machine has 1\.0 GiB available"):
        archc.compile(big)
    assert archc.compile("net small {\n input 1x1x1\n fc 20000\n}\n") is not None
