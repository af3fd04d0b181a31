"""Constructor arguments (issue 34): a net parameter is an argument of the emitted class only
where every use of it is written from it (a width, a conv's groups, a dropout's rate); else it
is built in (a shuffle's groups, a slope, an eps, a chunk count, a repetition count, a head's
loss weight). `type(net)(p=v)` builds what `archc.compile(path, overrides={p: v})` builds:
the same keys, shapes, initial values and outputs."""

from __future__ import annotations

import inspect

import pytest
import torch
from conftest import ROOT, nets, sweep

import archc
from archc.codegen.lower import compile_net
from archc.errors import ArchError
from archc.pipeline import analyse


def _input(source: str, batch: int = 2) -> torch.Tensor:
    analysis = analyse("<source>.arch", text=source)
    return torch.randn(batch, *analysis.shapes[analysis.graph.input])


# Nets whose parameter the class must either write from its argument or build in (issue 34:
# each was a constructor argument the class ignored or half-applied).
PARAMETERISED = {
    "width": ("net p(w = 4) { input 3x4x4; conv 1x1 w relu; gap; fc 3 }", 6),
    "groups": ("net p(g = 2) { input 8x4x4; conv 3x3 8 groups=g pad=1; gap; fc 3 }", 4),
    "rate": ("net p(d = 0.5) { input 8x4x4; conv 1x1 8; dropout d; gap; fc 3 }", 0.25),
    "shuffle": ("net p(g = 2) { input 8x4x4; conv 1x1 8; shuffle g; gap; fc 3 }", 4),
    "slope": ("net p(s = 0.2) { input 3x4x4; conv 1x1 8; leakyrelu slope=s; gap; fc 3 }", 0.5),
    "eps": ("net p(e = 0.001) { input 3x4x4; conv 1x1 8; bn eps=e; gap; fc 3 }", 0.5),
    "lrn": ("net p(n = 3) { input 8x4x4; conv 1x1 8; lrn n alpha=1; gap; fc 3 }", 5),
    "chunk": ("net p(c = 2) { input 8x4x4; conv 1x1 8; chunk c 0; gap; fc 3 }", 4),
    "repeat": ("net p(a = 1.0) { input 3x4x4; conv 1x1 4 x(max(1, floor(a))); gap; fc 3 }",
               2.0),
    "scale": ("net p(s = 0.5) { input 3x4x4; conv 1x1 4; scale s; gap; fc 3 }", 2.0),
    "derived": ("net p(w = 4, v = w * 2) { input 3x4x4; conv 1x1 w relu; conv 1x1 v; gap; fc 3 }",
                6),
    "head": ("net p(w = 0.3) { input 3x8x8; c1: conv 3x3 4 pad=1 relu\n"
             " head aux from c1 weight w { gap; fc 3 }\n gap; fc 3 }", 0.5),
}


def _arguments(net: torch.nn.Module) -> list[str]:
    return [name for name in inspect.signature(type(net)).parameters if name != "heads"]


@pytest.mark.parametrize("name", list(PARAMETERISED))
def test_a_constructor_argument_builds_what_the_override_builds(name):
    source, value = PARAMETERISED[name]
    net = archc.compile(source)
    for argument in _arguments(net):
        torch.manual_seed(0)
        given = type(net)(**{argument: value}).train()
        torch.manual_seed(0)
        built = archc.compile(source, overrides={argument: value}).train()
        assert [(k, t.shape) for k, t in given.state_dict().items()] == \
            [(k, t.shape) for k, t in built.state_dict().items()]
        assert all(torch.equal(a, b) for a, b in zip(given.state_dict().values(),
                                                    built.state_dict().values()))
        assert getattr(given, "loss_weights", None) == getattr(built, "loss_weights", None)
        x = _input(source)
        for mode in ("train", "eval"):
            torch.manual_seed(1)  # the same dropout masks
            ours = getattr(given, mode)()(x)
            torch.manual_seed(1)
            torch.testing.assert_close(ours, getattr(built, mode)()(x), msg=argument)


def test_what_the_class_cannot_write_from_an_argument_is_built_in():
    taken = {name: _arguments(archc.compile(source))
             for name, (source, _) in PARAMETERISED.items()}
    assert taken == {"width": ["w"], "groups": ["g"], "rate": ["d"], "shuffle": [],
                     "slope": [], "eps": [], "lrn": [], "chunk": [], "repeat": [], "scale": [],
                     "derived": ["w", "v"], "head": []}


def test_a_derived_parameter_follows_the_arguments_it_reads():
    """`v = w * 2` is computed in __init__ (`v=None`), so `type(net)(w=6)` has v = 12 as
    `--set w=6` has; it was the default's value, 8, whatever w was given."""
    net = archc.compile(PARAMETERISED["derived"][0])
    assert [m.out_channels for m in type(net)(w=6).modules()
            if isinstance(m, torch.nn.Conv2d)] == [6, 12]


@pytest.mark.parametrize("name", sweep(nets()))
def test_every_shipped_nets_constructor_arguments_build_the_overrides_modules(name):
    """Keys and shapes, on the meta device (no memory, no init)."""
    path = ROOT / "nets" / name
    analysis = analyse(path).raise_errors()
    with torch.device("meta"):
        net = compile_net(path)
        for argument in _arguments(net):  # `classes`, MnasNet's alpha; none where a head is
            # more than one block use (analysis.params)
            value = analysis.graph.params[argument]
            value = value + 1 if isinstance(value, int) else value * 1.5
            try:  # RegNet's stage width w1 + 1 has no whole number of groups
                built = compile_net(path, overrides={argument: value})
            except ArchError:
                continue
            given = type(net)(**{argument: value})
            assert [(k, t.shape) for k, t in given.state_dict().items()] == \
                [(k, t.shape) for k, t in built.state_dict().items()], argument
