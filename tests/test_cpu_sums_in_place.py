"""The cpu backend writes a shortcut sum over the shortcut (oneDNN's in-place sum post-op) only
where that loses nothing: the plan proves that no later layer reads the shortcut
(archc.backends.cpu.plan.sums_in_place), and at run time only the net's own forward writes
there (archc.backends.cpu.graph.inference runs it `owning` them), with no hook, torch mode
or module of the user's that could hold the tensor (archc.backends.cpu.owner)."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from torch.utils._python_dispatch import TorchDispatchMode

import archc
from archc.backends.cpu import owner
from archc.backends.cpu.plan import plan
from archc.codegen.lower import compile_net
from archc.pipeline import analyse

DIGITS = ROOT / "nets/resnet_digits.arch"  # 2 identity blocks, a projection, 1 identity

# The stem's output is read by the first block's sum and again by the concat after it, so
# that sum may not write over it; the second block's shortcut is the concat's (a torch op's).
READ_AGAIN = """use "lib/resnet.arch"
net read_again(classes = 5) {
    input 3x12x12
    conv 3x3 16 pad=1 bias=false; bn; relu
    concat {
        bottleneck(4)
        id
    }
    bottleneck(8)
    bottleneck(8)
    gap
    fc classes
}
"""


def _overwritten(path) -> list[int]:
    return [s.residual for s in plan(analyse(path)).steps if s.overwrites]


def test_resnet50_writes_every_sum_over_its_shortcut():
    """12 identity blocks write over the block's input, 4 projections over the residual
    branch's output, which only the sum reads."""
    analysis = analyse(ROOT / "nets/resnet50.arch")
    steps = [s for s in plan(analysis).steps if s.residual is not None]
    assert len(steps) == 16 and all(s.overwrites for s in steps)
    assert all("the sum written over %" in s.why for s in steps)
    assert analysis.graph.input not in {s.residual for s in steps}


def test_a_shortcut_read_after_the_sum_is_not_written_over():
    analysis = analyse(ROOT / "nets/read_again.arch", text=READ_AGAIN)
    steps = [s for s in plan(analysis).steps if s.residual is not None]
    assert len(steps) == 3
    stem, after_concat, last = steps
    assert not stem.overwrites  # the concat reads the stem's output after the sum
    assert not after_concat.overwrites  # a concat's output: not known to be a fresh tensor
    assert last.overwrites  # the block before made it, nothing reads it after


def _pair(source):
    torch.manual_seed(0)
    reference = archc.compile(source, backend="torch", heads=False, logits=True).eval()
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    fused = compile_net(source, "cpu", heads=False, logits=True).eval()
    fused.load_state_dict(reference.state_dict())
    return reference, fused


@pytest.fixture
def answers(monkeypatch):
    """What `may_overwrite` answered during the test, in order."""
    said, asked = [], owner.may_overwrite

    def spy():
        said.append(asked())
        return said[-1]
    monkeypatch.setattr(owner, "may_overwrite", spy)
    return said


def test_the_nets_forward_writes_over_its_shortcuts_and_gives_torchs_result(answers):
    reference, fused = _pair(DIGITS)
    x = torch.randn(3, 1, 8, 8)
    given = x.clone()
    with torch.no_grad():
        torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert answers == [True] * len(_overwritten(DIGITS)) and len(answers) == 4
    assert torch.equal(x, given)  # the net's input is never written over


def test_a_block_called_alone_leaves_its_input_as_it_was(answers):
    reference, fused = _pair(DIGITS)
    x = torch.randn(2, 32, 8, 8).contiguous(memory_format=torch.channels_last)
    given = x.clone()
    with torch.no_grad():
        torch.testing.assert_close(fused.layer1[1](x), reference.layer1[1](x),
                                   rtol=1e-4, atol=1e-5)
    assert answers == [False] and torch.equal(x, given)


def _kept_outputs(fused, x, hook_on) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each block's output as a forward hook keeps it, and a copy taken when it was made."""
    kept = []
    hook_on(lambda module, inputs, output: kept.append((output, output.clone()))
            if module in list(fused.layer1) + list(fused.layer2) else None)
    with torch.no_grad():
        fused(x)
    return kept


@pytest.mark.parametrize("where", ["module", "global"])
def test_a_hook_that_keeps_a_blocks_output_sees_it_unchanged(answers, where):
    reference, fused = _pair(DIGITS)
    x = torch.randn(2, 1, 8, 8)
    handles = []

    def hook_on(hook):
        if where == "global":
            handles.append(torch.nn.modules.module.register_module_forward_hook(hook))
        else:
            handles.extend(block.register_forward_hook(hook) for block in fused.layer1)
    try:
        kept = _kept_outputs(fused, x, hook_on)
    finally:
        for handle in handles:
            handle.remove()
    assert len(kept) == (4 if where == "global" else 2) and not any(answers)
    assert all(torch.equal(output, copy) for output, copy in kept)
    with torch.no_grad():  # hooks removed: in place again, the same result
        torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert answers[-4:] == [True] * 4


class _Keeper(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def test_a_torch_mode_or_a_users_module_in_the_net_turns_it_off(answers):
    reference, fused = _pair(DIGITS)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad(), _Keeper():
        torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert answers == []  # under a torch mode each layer runs as its module (backends.hooks)

    class Passing(torch.nn.Module):  # the user's: it could keep what it is given
        def forward(self, x):
            return x
    fused.layer1.append(Passing())
    reference.layer1.append(Passing())
    answers.clear()
    with torch.no_grad():
        torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert answers == [False] * 4


def test_only_a_net_that_writes_over_a_value_says_so(archc):
    for name, overwrites in (("resnet50", True), ("googlenet", False), ("mobilenet_v2", False)):
        status, source, err = archc("compile", f"nets/{name}.arch", "--backend", "cpu")
        assert status == 0, err
        assert "    @C.inference\n    def forward(self, x):  # 3x224x224" in source
        assert ("into_residual=True" in source) == overwrites
        status, source, err = archc("compile", f"nets/{name}.arch")  # the torch backend
        assert "@C." not in source and "into_residual" not in source


def test_a_file_emitted_before_the_graph_engine_still_runs(archc):
    """Files written by `archc compile --backend cpu` before 2026-12-06 decorate the net's
    forward with `C.owns_activations`; the name still serves."""
    status, source, err = archc("compile", str(DIGITS), "--backend", "cpu",
                                "--no-heads", "--logits")
    assert status == 0, err
    old = source.replace("    @C.inference\n", "    @C.owns_activations\n")
    assert "@C.owns_activations" in old and "@C.inference" not in old
    namespace: dict = {}
    exec(compile(old, "resnet_digits_cpu_old.py", "exec"), namespace)
    reference, fused = _pair(DIGITS)
    before = namespace["ResnetDigits"]().eval()
    before.load_state_dict(reference.state_dict())
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(before(x), reference(x), rtol=1e-4, atol=1e-5)
