"""Faithful by default (issue 34): `archc.compile()` gives a module that keeps torch.nn's
promises on every backend, and CPU speed is an explicit `archc.freeze`.

The module: hooks on every layer fire once with the torch backend's tensors, and a hook that
changes a layer's output changes the net's as on the torch backend, also where the layer sits
inside a fused kernel call; FlopCounterMode counts `archc stats`' MACs; functional_call,
autocast and attribute edits are seen. The engine: its output is the module's at freeze time,
alternating batch sizes, no submodules, a FrozenError for what it does not do, refresh().
"""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from test_triton_backend import TINY_GOOGLENET, TINY_NIN, TINY_RESNET
from test_triton_mobile import TINY_CONVNEXT, TINY_EFFICIENTNET, TINY_MOBILENET
from torch.utils.flop_counter import FlopCounterMode

import archc
from archc import Engine, FrozenError
from archc.analysis.cost import total
from archc.backends.cpu import runtime as cpu
from archc.codegen.lower import compile_net
from archc.pipeline import analyse

TINY = {"googlenet": TINY_GOOGLENET, "nin": TINY_NIN, "resnet": TINY_RESNET,
        "mobilenet": TINY_MOBILENET, "efficientnet": TINY_EFFICIENTNET,
        "convnext": TINY_CONVNEXT,  # a layer norm in the depthwise kernel, a layer scale
        "lrn": "net l { input 3x8x8; conv 3x3 8 relu; lrn 5; maxpool 3x3/2; gap; fc 3 }"}


def _modules(source: str, backend: str, seed: int = 0) -> tuple[torch.nn.Module, ...]:
    """The torch backend's module in eval mode (bn statistics not the identity) and the
    backend's with its state_dict."""
    torch.manual_seed(seed)
    reference = compile_net(source, "torch", heads=False, logits=True)
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    other = compile_net(source, backend, heads=False, logits=True)
    other.load_state_dict(reference.state_dict())
    return reference.eval(), other.eval()


def _leaves(net: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {name: m for name, m in net.named_modules()
            if name and next(m.children(), None) is None}


def _record(net: torch.nn.Module, doubled: str | None = None) -> dict[str, list]:
    """Hooks on every leaf module recording its outputs; the one named `doubled` doubles its."""
    seen: dict[str, list] = {}

    def hook(name):
        def run(module, inputs, output):
            seen.setdefault(name, []).append(output.detach().clone())
            return output * 2 if name == doubled else None
        return run
    for name, module in _leaves(net).items():
        module.register_forward_hook(hook(name))
    return seen


@pytest.mark.parametrize("backend", ["triton", "cpu"])
@pytest.mark.parametrize("name", list(TINY))
def test_every_hook_fires_once_with_the_torch_backends_tensor(name, backend, monkeypatch):
    monkeypatch.chdir(ROOT / "nets")
    reference, net = _modules(TINY[name], backend)
    expected, got = _record(reference), _record(net)
    x = _input(TINY[name])
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x), rtol=1e-4, atol=1e-5)
    # every layer, each once (a merged GEMM's siblings run before the first one's successor)
    assert sorted(got) == sorted(expected) and len(expected) == len(_leaves(reference))
    for layer, outputs in expected.items():
        assert len(got[layer]) == len(outputs) == 1, layer
        torch.testing.assert_close(got[layer][0], outputs[0], rtol=1e-4, atol=1e-5)


def _input(source: str, batch: int = 2) -> torch.Tensor:
    analysis = analyse("<source>.arch", text=source)
    return torch.randn(batch, *analysis.shapes[analysis.graph.input])


# Blocks fused as one before them: each layer is hooked in turn (the interpreter's seconds)
REPEATED = {"googlenet": ("inception3b",), "resnet": ("layer1.1", "layer2.0"),
            "efficientnet": ("mbconv_res1.residual.0.mbconv_dw1",)}


@pytest.mark.parametrize("backend", ["triton", "cpu"])
@pytest.mark.parametrize("name", ["googlenet", pytest.param("resnet", marks=pytest.mark.slow),
                                  pytest.param("efficientnet", marks=pytest.mark.slow)])
def test_a_hook_that_changes_one_layers_output_inside_a_fused_call_changes_the_nets(
        name, backend, monkeypatch):
    """One hooked layer at a time (a bn folded into a GEMM, a pool the GEMM reads through, a
    sibling of a merged GEMM, an SE squeeze), the rest of the net fused as ever."""
    monkeypatch.chdir(ROOT / "nets")
    reference, net = _modules(TINY[name], backend)
    x = _input(TINY[name], batch=1)
    for layer in [k for k in _leaves(reference) if not k.startswith(REPEATED.get(name, ()))]:
        handles = []
        for module in (reference, net):
            target = dict(module.named_modules())[layer]
            handles.append(target.register_forward_hook(lambda m, i, out: out * 2))
        with torch.no_grad():
            torch.testing.assert_close(net(x), reference(x), rtol=1e-4, atol=1e-5,
                                       msg=lambda m, layer=layer: f"{layer}: {m}")
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("backend", ["torch", "triton", "cpu"])
def test_flop_counter_mode_counts_archc_stats_macs(backend, monkeypatch):
    monkeypatch.chdir(ROOT / "nets")
    analysis = analyse("<source>.arch", text=TINY_RESNET).raise_errors()
    macs = total(analysis.costs, analysis.graph.main_nodes()).macs
    _, net = _modules(TINY_RESNET, backend)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(_input(TINY_RESNET, batch=3))
    assert counter.get_total_flops() == 2 * 3 * macs


def test_the_default_module_is_plain_torch_and_counts_resnet18():
    """FlopCounterMode on `archc.compile()`'s module: `archc stats`' MACs (0 before)."""
    analysis = analyse(ROOT / "nets/resnet18.arch")
    net = archc.compile(ROOT / "nets/resnet18.arch").eval()
    assert "from archc.backends" not in type(net).__module__ and \
        not any(type(m).__module__.startswith("archc.backends") for m in net.modules())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.randn(1, 3, 224, 224))
    assert counter.get_total_flops() == 2 * total(analysis.costs, analysis.graph.main_nodes()).macs


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_functional_call_and_attribute_edits_are_seen(backend, monkeypatch):
    monkeypatch.chdir(ROOT / "nets")
    reference, net = _modules(TINY_RESNET, backend)
    x = _input(TINY_RESNET)
    scaled = {k: v * 1.5 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    with torch.no_grad():
        expected = torch.func.functional_call(reference, scaled, (x,))
        torch.testing.assert_close(torch.func.functional_call(net, scaled, (x,)), expected,
                                   rtol=1e-4, atol=1e-5)
        assert not torch.allclose(expected, reference(x))
        for module in (reference, net):
            module.layer1[0].residual.bn1.eps = 0.5
        torch.testing.assert_close(net(x), reference(x), rtol=1e-4, atol=1e-5)


def test_autocast_is_seen_by_the_module_and_forgotten_after_it():
    net = archc.compile(ROOT / "nets/nin_digits.arch", logits=True).eval()
    x = _input_of(ROOT / "nets/nin_digits.arch")
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert net(x).dtype == torch.bfloat16
        assert net(x).dtype == torch.float32


def _input_of(path, batch: int = 2) -> torch.Tensor:
    analysis = analyse(path)
    return torch.randn(batch, *analysis.shapes[analysis.graph.input])


# ---- the frozen engine ----------------------------------------------------------------------

ALIASED_SUM = """net a {
  input 4x6x6
  conv 1x1 8 relu
  concat { dropout 0.5; sum { { conv 1x1 8 relu; conv 1x1 8 bias=false; bn }; id } }
  gap
  fc 10
}"""


@pytest.mark.parametrize("source", [
    ALIASED_SUM, ALIASED_SUM.replace("dropout 0.5", "droppath 0.2"),
    ALIASED_SUM.replace("dropout 0.5", "{ chunk 2 0 }"),
], ids=["dropout", "droppath", "chunk"])
def test_no_sum_is_written_over_a_value_a_view_of_which_is_read_later(source):
    """A dropout in eval mode (or a chunk) hands the concat the shortcut's own memory."""
    torch.manual_seed(0)
    net = archc.compile(source, logits=True).eval()
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        expected = net(x)
    engine = archc.freeze(net)
    for _ in range(3):
        torch.testing.assert_close(engine(x), expected, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def resnet_digits():
    torch.manual_seed(0)
    net = archc.compile(ROOT / "nets/resnet_digits.arch", logits=True).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return net


def test_the_engine_gives_the_modules_output_at_alternating_batch_sizes_packing_once(
        resnet_digits, monkeypatch):
    packs = []
    pack = cpu._pack_conv
    monkeypatch.setattr(cpu, "_pack_conv", lambda *a: packs.append(1) or pack(*a))
    engine = archc.freeze(resnet_digits)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in resnet_digits.modules())
    for batch in (1, 3, 1, 3, 1, 3):
        x = _input_of(ROOT / "nets/resnet_digits.arch", batch)
        with torch.no_grad():
            expected = resnet_digits(x)
        torch.testing.assert_close(engine(x), expected, rtol=1e-4, atol=1e-5)
    assert len(packs) == 2 * convs  # each conv's weight packed once per batch size


def test_the_engine_holds_no_submodules_and_is_a_snapshot_until_refreshed(resnet_digits):
    engine = archc.freeze(resnet_digits)
    assert list(engine.modules()) == [engine] and engine.state_dict() == {}
    x = _input_of(ROOT / "nets/resnet_digits.arch")
    before = engine(x)
    bn = next(m for m in resnet_digits.modules() if isinstance(m, torch.nn.BatchNorm2d))
    conv = next(m for m in resnet_digits.modules() if isinstance(m, torch.nn.Conv2d))
    eps = bn.eps
    try:
        bn.eps = 0.5
        with torch.no_grad():
            conv.weight.mul_(2.0)
            edited = resnet_digits(x)
        assert torch.equal(engine(x), before)  # the module at freeze time
        torch.testing.assert_close(engine.refresh()(x), edited, rtol=1e-4, atol=1e-5)
    finally:
        bn.eps = eps
        with torch.no_grad():
            conv.weight.div_(2.0)


@pytest.mark.parametrize("call, message", [
    (lambda e, x: e.train(), "a frozen engine runs inference only"),
    (lambda e, x: e(x.double()), "a frozen engine runs float32; the input is torch.float64"),
    (lambda e, x: e(x.requires_grad_()), "the input requires grad"),
    (lambda e, x: e(x.to("meta")), "a frozen engine runs on the CPU; the input is on meta"),
])
def test_what_the_engine_does_not_do_is_a_frozen_error(resnet_digits, call, message):
    engine = archc.freeze(resnet_digits)
    with pytest.raises(FrozenError, match=message):
        call(engine, _input_of(ROOT / "nets/resnet_digits.arch"))


def test_under_autocast_the_engine_refuses_and_after_it_runs_float32(resnet_digits):
    engine = archc.freeze(resnet_digits)
    x = _input_of(ROOT / "nets/resnet_digits.arch")
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(FrozenError,
                                                                     match="autocast is on"):
        engine(x)
    assert engine(x).dtype == torch.float32


def test_freeze_refuses_what_it_cannot_stand_for(resnet_digits):
    with pytest.raises(FrozenError, match="takes a module archc.compile\\(\\) made"):
        archc.freeze(torch.nn.Conv2d(3, 3, 1))
    class Mine(torch.nn.Conv2d):
        pass

    net = archc.compile(ROOT / "nets/resnet_digits.arch", logits=True)
    path, conv = next((p, m) for p, m in net.named_modules() if isinstance(m, torch.nn.Conv2d))
    parent, _, name = path.rpartition(".")
    mine = Mine(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, bias=conv.bias is not None)
    setattr(net.get_submodule(parent), name, mine)
    with pytest.raises(FrozenError, match=f"module '{path}' is a .*Mine, not the module archc "
                                          "built there"):
        archc.freeze(net)
    net = archc.compile(ROOT / "nets/resnet_digits.arch", logits=True)
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean = bn.running_var = None
    with pytest.raises(FrozenError, match="keeps no running statistics"):
        archc.freeze(net)


def test_compile_with_the_cpu_backend_is_the_frozen_engine():
    torch.manual_seed(0)
    engine = archc.compile(ROOT / "nets/nin_digits.arch", backend="cpu", logits=True)
    assert isinstance(engine, Engine)
    torch.manual_seed(0)
    net = archc.compile(ROOT / "nets/nin_digits.arch", logits=True).eval()
    x = _input_of(ROOT / "nets/nin_digits.arch")
    with torch.no_grad():
        torch.testing.assert_close(engine(x), net(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,backend", [("googlenet", "triton"), ("efficientnet", "triton"),
                                          ("resnet", "cpu")])
def test_a_file_emitted_by_an_earlier_archc_still_runs(name, backend, monkeypatch):
    """tests/data/emitted_before: `archc compile --backend triton` of 2026-12-06 (pools as
    `K.pool2d(x, 'max', (3, 3), ...)`, `pool=True`, `K.global_avg_pool(x)`, None slots), and
    `--backend cpu` of 2026-12-07, before each backend became one folder (issue 36): emitted
    files name only `archc.backends.functional` and `archc.backends.cpu`, whatever moves."""
    import importlib.util

    monkeypatch.chdir(ROOT / "nets")
    path = ROOT / f"tests/data/emitted_before/tiny_{name}_{backend}.py"
    spec = importlib.util.spec_from_file_location(f"emitted_before_{name}", path)
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    reference = compile_net(TINY[name], "torch").eval()  # heads, the final softmax: as then
    old = getattr(source, f"Tiny{name.capitalize()}")().eval()
    old.load_state_dict(reference.state_dict())
    x = _input(TINY[name])
    with torch.no_grad():
        torch.testing.assert_close(old(x), reference(x), rtol=1e-4, atol=1e-5)
