"""The triton backend: its plan, its IR, its emitted source, and equality with the torch
backend (same state_dict, same outputs and gradients) on reduced-width nets.

Without a GPU the kernels run in Triton's interpreter (conftest), so the nets are small.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, has_cuda
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_lower import LAYERS

import archc
from archc.backends.registry import BACKENDS
from archc.backends.triton.plan import plan
from archc.codegen.lower import compile_net, training_loss
from archc.errors import ArchError
from archc.ir.graph import IRError
from archc.pipeline import analyse

TINY_GOOGLENET = """use "lib/inception.arch"
net tiny_googlenet(classes = 5) {
    input 3x12x12
    default conv relu pad=same
    default pool round=ceil
    conv 3x3 16
    maxpool 3x3/2
    3a: inception(8, 8, 12, 4, 6, 6)
    3b: inception(6, 6, 8, 2, 4, 4)
    head aux from 3a weight 0.3 { avgpool 3x3/2; conv 1x1 8; fc 10 relu; fc classes; softmax }
    maxpool 3x3/2
    gap
    dropout 0.4
    fc classes linear
    softmax
}
"""
TINY_NIN = """use "lib/nin.arch"
net tiny_nin(classes = 4) {
    input 3x12x12
    default conv relu
    default pool round=ceil
    { conv 5x5 16 pad=2; mlp(12, 8) }
    maxpool 3x3/2
    dropout 0.5
    { conv 3x3 16 pad=1; mlp(16, classes) }
    avgpool 3x3/2
    gap
    softmax
}
"""


@pytest.mark.parametrize("name", ["googlenet", "nin_cifar10", "resnet50", "mobilenet_v2",
                                  "efficientnet_b0", "convnext_tiny"])
def test_plan(archc, golden, name):
    status, out, err = archc("compile", f"nets/{name}.arch", "--backend", "triton", "--plan")
    assert status == 0, err
    golden(ROOT / "tests/golden/plan" / f"{name}.txt", out)


def test_googlenets_plan_merges_each_inceptions_three_sibling_1x1s():
    analysis = analyse(ROOT / "nets/googlenet.arch")
    steps = plan(analysis).steps
    merged = [s for s in steps if s.kind == "gemm" and len(s.nodes) > 1]
    assert len(merged) == 9 and all(len(s.nodes) == 3 for s in merged)
    widths = [sum(analysis.graph.node(n).op.channels for n in s.nodes) for s in merged]
    assert widths[0] == 64 + 96 + 16 and widths[-1] == 384 + 192 + 48
    first = merged[0]
    assert first.into[0] is not None and (first.into[0].start, first.into[0].stop) == (0, 64)
    assert first.into[1] is None  # the 3x3 reduce feeds a cuDNN conv, not the concat


@pytest.mark.parametrize("name", ["googlenet", "nin_cifar10"])
def test_ir_dump(archc, golden, name):
    status, out, err = archc("compile", f"nets/{name}.arch", "--emit", "ir")
    assert status == 0, err
    golden(ROOT / "tests/golden/ir" / f"{name}.txt", out)


def test_verify_finds_a_broken_ir():
    from dataclasses import replace

    graph = analyse(ROOT / "nets/nin_cifar10.arch").graph
    assert graph.verify() is graph
    graph._nodes[3] = replace(graph.node(3), inputs=(7,))  # reads a later layer
    with pytest.raises(IRError, match="%3 reads only earlier layers"):
        graph.verify()


def test_emitted_triton_source(archc, golden):
    status, source, err = archc("compile", "nets/googlenet.arch", "--backend", "triton")
    assert status == 0, err
    assert "from archc.backends import functional as K" in source
    assert max(map(len, source.splitlines())) <= 100
    golden(ROOT / "tests/golden/emit/googlenet_triton.py", source)


def test_functional_is_the_kernel_files_entry_points_by_the_names_emitted_code_calls():
    """One op, one file: `functional` defines nothing, each entry point lives in its kernel's
    file (or with the values it makes, for gates, sums and concats) and is what a call row
    of archc.backends.triton.calls names."""
    import importlib

    from archc.backends import functional as K
    from archc.backends.triton import calls

    for name in K.__all__:
        home = importlib.import_module(getattr(K, name).__module__)
        assert home.__name__.startswith("archc.backends.") and home is not K, name
    entries = {"conv1x1": "conv1x1.layer", "conv1x1_siblings": "conv1x1.siblings",
               "dwconv": "dwconv.layer", "mlp1x1": "mlp1x1.layer", "pool2d": "pool2d.layer",
               "global_avg_pool": "global_avg_pool.layer"}
    for name, where in entries.items():
        module, function = where.split(".")
        assert getattr(K, name) is getattr(importlib.import_module(
            f"archc.backends.triton.{module}"), function)
    written = set(re.findall(r"K\.(\w+)\(", Path(calls.__file__).read_text()))
    assert written and written <= set(K.__all__)


@pytest.mark.parametrize("source", [TINY_GOOGLENET, TINY_NIN], ids=["googlenet", "nin"])
def test_triton_backend_equals_torch_backend(source, monkeypatch):
    """Same state_dict; same outputs in train and eval mode; same gradients."""
    monkeypatch.chdir(ROOT / "nets")
    torch.manual_seed(0)
    reference = archc.compile(source, backend="torch")
    fused = archc.compile(source, backend="triton")
    assert {k: v.shape for k, v in reference.state_dict().items()} == \
        {k: v.shape for k, v in fused.state_dict().items()}
    fused.load_state_dict(reference.state_dict())
    for module in (*reference.modules(), *fused.modules()):
        if isinstance(module, torch.nn.Dropout):
            # Dropout draws its mask in memory order: the same seed masks other elements of
            # a channels-last tensor, so train-mode outputs would differ by design.
            module.p = 0.0
    x, labels = torch.randn(2, 3, 12, 12), torch.tensor([1, 3])
    outputs = []
    for module in (reference, fused):
        out = module.train()(x)
        training_loss(module, out, labels).backward()
        with torch.no_grad():
            outputs.append((out, module.eval()(x)))
    (train_a, eval_a), (train_b, eval_b) = outputs
    if isinstance(train_a, tuple):
        torch.testing.assert_close(train_a[1], train_b[1], rtol=1e-5, atol=1e-6)
        train_a, train_b = train_a[0], train_b[0]
    torch.testing.assert_close(train_b, train_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(eval_b, eval_a, rtol=1e-5, atol=1e-6)
    grads = dict(fused.named_parameters())
    for name, p in reference.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_without_cuda_or_the_interpreter_it_runs_torch_ops_and_says_so_once():
    script = ("import warnings, torch, archc\n"
              "warnings.simplefilter('always')\n"
              f"net = archc.compile({TINY_NIN!r}, backend='triton').eval()\n"
              "ref = archc.compile({TINY_NIN!r})\n"
              "ref.load_state_dict(net.state_dict())\n"
              "x = torch.randn(1, 3, 12, 12)\n"
              "with torch.no_grad():\n"
              "    torch.testing.assert_close(net(x), ref.eval()(x)); net(x)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", script.replace("{TINY_NIN!r}", repr(
        TINY_NIN))], cwd=ROOT / "nets", env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    if "cuda" not in result.stderr:  # on a GPU machine the kernels refuse CPU tensors alike
        assert result.stderr.count("runs as torch ops here") == 3  # conv1x1, pool2d, gap
        assert "a CPU tensor without TRITON_INTERPRET=1" in result.stderr


def test_at_inference_the_kernels_write_their_concat_slices_and_only_cudnns_are_copied(
        monkeypatch):
    from archc.backends.functional import ConcatBuffer

    seen = []
    join = ConcatBuffer.join

    def spy(self, branches):
        seen.append(None if self.buffer is None else [
            b.data_ptr() == self.slice(i, b, *b.shape[2:]).data_ptr()
            for i, b in enumerate(branches)])
        return join(self, branches)

    monkeypatch.setattr(ConcatBuffer, "join", spy)
    monkeypatch.chdir(ROOT / "nets")
    net = archc.compile(TINY_GOOGLENET, backend="triton")
    reference = archc.compile(TINY_GOOGLENET, backend="torch")
    reference.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), reference.eval()(x), rtol=1e-5, atol=1e-6)
    # #1x1 (the merged GEMM's first slice) and pool proj in place; the 3x3 and 5x5 copied
    assert seen == [[True, False, False, True]] * 2
    seen.clear()
    net.train()(x)  # autograd records: no shared buffer, torch.cat
    assert seen == [None, None]


def test_torch_compile_runs_the_triton_module_forward_and_backward(monkeypatch):
    monkeypatch.chdir(ROOT / "nets")
    torch.manual_seed(0)
    net = archc.compile(TINY_NIN, backend="triton")
    for module in net.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    x = torch.randn(2, 3, 12, 12)
    eager = net(x)
    eager.sum().backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad()
    compiled = torch.compile(net, backend="aot_eager")  # the custom ops' fake and backward
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, eager)
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], msg=name)


def test_an_unknown_backend_is_a_clear_error(archc):
    from archc.errors import UsageError

    message = r"unknown backend 'cuda' \(available: torch, cpu, triton\)"
    with pytest.raises(UsageError, match=message):
        compile_net(ROOT / "nets/nin_cifar10.arch", backend="cuda")
    status, _, err = archc("compile", "nets/nin_cifar10.arch", "--backend", "cuda")
    assert status == 2 and "invalid choice: 'cuda'" in err
    status, _, err = archc("compile", "nets/nin_cifar10.arch", "--plan")
    assert status == 2 and "--plan shows a fusing backend's plan" in err


# ---- full size, on a GPU -------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not has_cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["googlenet", "nin_cifar10", "vgg_a", "resnet50"])
def test_full_size_nets_on_the_gpu_equal_the_torch_backend(name):
    """Real kernels, full size, batch 8: forward (fp32 with TF32 as cuDNN, and fp16) and
    gradients, same weights. TF32 and fp16 round differently from cuDNN's algorithms, so
    the comparison is by relative norm: TF32 lands near 3e-4, fp16 near 1e-3."""
    torch.manual_seed(0)
    reference = archc.compile(ROOT / f"nets/{name}.arch", backend="torch", heads=False,
                               logits=True).cuda()
    fused = archc.compile(ROOT / f"nets/{name}.arch", backend="triton", heads=False,
                          logits=True).cuda()
    fused.load_state_dict(reference.state_dict())
    shape = next(iter(reference.parameters())).shape  # the first conv: its input channels
    size = {"nin_cifar10": 32}.get(name, 224)
    x = torch.randn(8, shape[1], size, size, device="cuda")
    for module in (reference, fused):
        for layer in module.modules():
            if isinstance(layer, torch.nn.Dropout):
                layer.p = 0.0
        module(x).square().mean().backward()
    for dtype, bound in ((torch.float32, 2e-3), (torch.float16, 1e-2)):
        with torch.no_grad(), torch.autocast("cuda", dtype, enabled=dtype != torch.float32):
            want, got = reference.eval()(x).float(), fused.eval()(x).float()
        assert ((got - want).norm() / want.norm()).item() < bound, dtype
    grads = dict(fused.named_parameters())
    for key, p in reference.named_parameters():
        error = (grads[key].grad - p.grad).norm() / p.grad.norm().clamp_min(1e-12)
        assert error.item() < 1e-2, key


TINY_RESNET = """use "lib/resnet.arch"
net tiny_resnet(classes = 5) {
    input 3x12x12
    conv1: { conv 3x3 16 pad=1 bias=false; bn; relu }
    layer1: { bottleneck_proj(4, 1); bottleneck(4) }
    layer2: { bottleneck_proj(8, 2); basic(32) }
    gap
    fc classes
}
"""


def test_resnets_plan_folds_bn_and_adds_the_shortcut_in_the_gemm_epilogue():
    analysis = analyse(ROOT / "nets/resnet50.arch")
    steps = [s for s in plan(analysis).steps if s.kind == "gemm"]
    with_shortcut = [s for s in steps if s.residual is not None]
    assert all(s.bn is not None for s in steps)  # every 1x1 of ResNet-50 is followed by a bn
    # 12 identity bottlenecks add x; layer1's stride-1 projection's shortcut GEMM adds the
    # residual branch; the three strided projections stay on cuDNN
    assert len(with_shortcut) == 13 and all(s.relu and len(s.tail) == 3 for s in with_shortcut)


def test_triton_resnet_equals_torch_with_bn_folded_in_eval_and_not_in_training(monkeypatch):
    monkeypatch.chdir(ROOT / "nets")
    torch.manual_seed(0)
    reference = archc.compile(TINY_RESNET, backend="torch")
    fused = archc.compile(TINY_RESNET, backend="triton")
    fused.load_state_dict(reference.state_dict())
    source = archc_source(TINY_RESNET)
    assert "bn=self.residual.bn3, residual=x)" in source  # the epilogue is in the source
    x = torch.randn(4, 3, 12, 12)
    outs = [m.train()(x) for m in (reference, fused)]
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    for out in outs:
        out.square().mean().backward()
    grads = dict(fused.named_parameters())
    for key, p in reference.named_parameters():
        torch.testing.assert_close(grads[key].grad, p.grad, rtol=1e-4, atol=1e-6, msg=key)
    buffers = dict(fused.named_buffers())
    for key, b in reference.named_buffers():  # running statistics updated alike
        torch.testing.assert_close(buffers[key], b, rtol=1e-5, atol=1e-6, msg=key)
    with torch.no_grad():  # eval: bn folded into the GEMMs' weights and biases
        torch.testing.assert_close(fused.eval()(x), reference.eval()(x), rtol=1e-4, atol=1e-5)


def archc_source(text: str) -> str:
    from archc.codegen.emit import emit

    return emit(analyse("<source>.arch", {}, text=text), backend=BACKENDS["triton"]).source


@pytest.mark.parametrize("body", [
    "conv 5x5/2 4 pad=2\nrelu\nsum { { bn; tanh }; id }",  # a cuDNN conv's ReLU layer
    "conv 1x1 4 bias=false\nbn\nrelu\nconcat { { conv 1x1 3; relu }; id }",
    "sum { { conv 1x1 3 bias=false; bn }; id }\nrelu",
    "conv 1x1 3\nsum { id; id }\nrelu",  # x + x: no shortcut to take (was StopIteration)
    "concat { K: conv 1x1 3; check_input: conv 1x1 2; buffer: conv 1x1 2 }",  # emitted names
])
def test_fused_epilogues_keep_every_layer(body):
    """Found by random nets: a conv's ReLU layer taken into its step must still be applied."""
    assert_backends_agree(f"net r {{\n input 3x9x9\n{body}\n}}\n", (3, 9, 9))


def assert_backends_agree(source: str, shape: tuple[int, int, int]) -> None:
    """The triton module, with the torch module's weights, gives its outputs in train and
    eval mode (no dropout in these nets)."""
    torch.manual_seed(0)
    reference = archc.compile(source, backend="torch")
    fused = archc.compile(source, backend="triton")
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(2, *shape)
    for mode in ("train", "eval"):
        with torch.no_grad():
            torch.testing.assert_close(getattr(fused, mode)()(x), getattr(reference, mode)()(x),
                                       rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("source", [
    "block cb(c) { conv 1x1 c bias=false; bn }\n"
    "net t { input 16x8x8; sum { cb(16); id }; relu; gap; fc 10 }\n",
    "block cb(c) { conv 1x1 c bias=false; bn; relu }\n"
    "net t { input 16x8x8; sum { cb(16); id }; relu; gap; fc 10 }\n",
    "block pb() { maxpool 3x3/1 pad=1 }\nblock br(c) { pb(); conv 1x1 c bias=false; bn }\n"
    "net t { input 16x8x8; sum { br(16); id }; relu; gap; fc 10 }\n",
], ids=["bn", "bn-relu", "pool-bn"])
def test_a_fusion_that_crosses_a_block_boundary_keeps_each_layer(source):
    """Issue 14: the plan fuses a 1x1's bn (or pool) and the sum outside its block; the emitter
    crashed with AttributeError ('BatchNorm' object has no attribute 'act')."""
    assert_backends_agree(source, (16, 8, 8))


def test_a_concat_of_flat_values_is_flat_through_activations():
    """Flatness has one definition (archc.analysis.shapes.flat_values): a concat of fc outputs
    passed through ReLUs is flat, so the plan gives it no NHWC buffer."""
    assert_backends_agree("net t { input 3x4x4; conv 1x1 8; "
                          "concat { { fc 10; relu }; { fc 6; relu } }; fc 5 }\n", (3, 4, 4))
    from archc.backends.triton.plan import plan
    from archc.pipeline import analyse

    analysis = analyse("t.arch", text="net t { input 3x4x4; conv 1x1 8; "
                       "concat { { fc 10; relu }; { fc 6; relu } }; fc 5 }\n")
    assert plan(analysis.raise_errors()).slices == {}


# Blocks the random nets may use, so that the plan's fusions reach across class boundaries
# (a 1x1 + bn inside a block whose sum and ReLU are outside it: issue 14's crash).
NESTED_BLOCKS = """
block cb(c) { conv 1x1 c bias=false; bn }
block pb() { maxpool 3x3/1 pad=1 }
block wrap(c) { cb(c); relu }
"""
NESTED = st.sampled_from([  # one pool only: a pool costs ~10 s in the interpreter
    "sum {{ cb({c}); id }}", "sum {{ wrap({c}); id }}\nrelu", "cb({c})\nrelu",
    "{{ pb(); cb({c}) }}", "conv 1x1 {c}\nsum {{ id; id }}",
])


def random_source(layers, channels: int, size: int) -> str:
    """A net of the layers, each one inline (depth 0), in a block of its own (1), or in a
    block used by a block (2)."""
    blocks, body = [NESTED_BLOCKS], []
    for i, (template, c, depth) in enumerate(layers):
        text = template.format(c=c)
        for level in range(depth):
            name = f"l{i}_{level}"
            blocks.append(f"block {name}() {{\n{text}\n}}")
            text = f"{name}()"
        body.append(text)
    return "\n".join(blocks) + f"\nnet r {{\n input {channels}x{size}x{size}\n" + \
        "\n".join(body) + "\n}\n"


def _normalises_a_constant(net: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether a batch norm in training sees a channel that is one value (a softmax over one
    channel makes ones): it then divides the rounding noise of its mean by sqrt(eps), and two
    correct backends' outputs differ by that noise times 300."""
    flat = []
    hooks = [m.register_forward_pre_hook(lambda m, args: flat.append(
                 bool((args[0].var(dim=(0, 2, 3), unbiased=False) < 1e-8).any())))
             for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    return any(flat)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(LAYERS | NESTED, st.integers(1, 6), st.integers(0, 2)), min_size=1,
                max_size=5),
       st.integers(1, 3), st.integers(5, 8))  # small: each pool is a program per pixel
def test_random_nets_agree_across_backends(layers, channels, size):
    """The triton backend's plan (fusions, epilogues, concat buffers) against the torch
    backend on random small nets, nested blocks included, train and eval mode, dropout off;
    and archc.freeze's engine (the cpu backend's plan) in eval mode."""
    source = random_source(layers, channels, size)
    try:
        reference = archc.compile(source, backend="torch")
    except ArchError:
        return  # refused by the front end, as it should be
    fused = archc.compile(source, backend="triton")
    fused.load_state_dict(reference.state_dict())
    for module in (*reference.modules(), *fused.modules()):
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    x = torch.randn(2, channels, size, size)
    assume(not _normalises_a_constant(copy.deepcopy(reference).train(), x))
    for mode in ("train", "eval"):
        with torch.no_grad():
            torch.testing.assert_close(getattr(fused, mode)()(x), getattr(reference, mode)()(x),
                                       rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(archc.freeze(reference)(x), reference(x), rtol=1e-4,
                                   atol=1e-5)
