"""The cpu backend's second engine (archc.backends.cpu.graph): after `WARM_UP` forwards of an
input shape the net is traced, frozen into oneDNN Graph partitions and timed against its own
calls; the faster serves that shape. The graph gives the torch backend's result, follows the
weights, and steps aside wherever it could not compute what the module would. Timings are
replaced here, so which engine wins is the test's choice, not the machine's."""

from __future__ import annotations

import gc
import warnings
import weakref

import pytest
import torch
from conftest import ROOT
from test_cpu_backend import _input
from test_cpu_backend import _pair as perturbed_pair
from test_cpu_sums_in_place import _pair

from archc.backends.cpu import graph as cpu_graph

DIGITS = ROOT / "nets/resnet_digits.arch"


@pytest.fixture
def builds(monkeypatch) -> list:
    """The graphs the test's nets built, one 1 each."""
    built, compile_graph = [], cpu_graph._compile
    monkeypatch.setattr(cpu_graph, "_compile", lambda net, x: built.append(1) or
                        compile_graph(net, x))
    return built


@pytest.fixture
def graph_wins(monkeypatch):
    """The graph measures faster; counts the forwards it serves."""
    served = []
    monkeypatch.setattr(cpu_graph, "_seconds", lambda engine, x: float(
        not isinstance(engine, torch.jit.ScriptModule)))
    choose = cpu_graph._graph_for

    def spy(net, forward, x):
        graph = choose(net, forward, x)
        served.append(graph is not None)
        return graph
    monkeypatch.setattr(cpu_graph, "_graph_for", spy)
    return served


def _choice(net, x) -> cpu_graph.Choice:
    return cpu_graph._choices[net][(tuple(x.shape), x.stride())]


def test_a_shape_seen_often_runs_as_one_onednn_graph_with_torchs_result(graph_wins):
    reference, fused = _pair(DIGITS)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        for _ in range(cpu_graph.WARM_UP + 3):
            torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert graph_wins == [False] * cpu_graph.WARM_UP + [True] * 3
    graph = _choice(fused, x).graph
    assert "oneDNNFusionGroup" in str(torch.jit.last_executed_optimized_graph())
    assert isinstance(graph, torch.jit.ScriptModule)
    assert cpu_graph.engine(fused, x) == "oneDNN Graph" and \
        cpu_graph.engine(fused, x[:2]) == "undecided"
    with torch.no_grad():  # another shape: its own count, its own choice
        fused(x[:2])
    assert _choice(fused, x[:2]).seen == 1 and _choice(fused, x).graph is graph


def test_the_nets_own_calls_stay_where_they_measure_faster(monkeypatch, builds):
    monkeypatch.setattr(cpu_graph, "_seconds", lambda engine, x: float(
        isinstance(engine, torch.jit.ScriptModule)))
    reference, fused = _pair(DIGITS)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        for _ in range(cpu_graph.WARM_UP + 4):
            torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert _choice(fused, x).graph is cpu_graph.OWN and builds == [1]  # measured once
    assert cpu_graph.engine(fused, x) == "own calls"


def test_the_graph_follows_new_weights_and_steps_aside_for_a_hook(graph_wins):
    reference, fused = _pair(DIGITS)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        for _ in range(cpu_graph.WARM_UP + 1):
            fused(x)
        assert graph_wins[-1]
        for model in (reference, fused):  # an edit in place: the frozen constants are stale
            model.stem[0].weight.mul_(-1.0)
        torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
        assert not graph_wins[-1] and _choice(fused, x).graph is None
        seen = []
        handle = fused.layer1[0].register_forward_hook(lambda m, i, out: seen.append(out.shape))
        torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
        handle.remove()
    assert seen == [(2, 32, 8, 8)] and not graph_wins[-1]


@pytest.mark.parametrize("why", ["train", "autograd", "switched off"])
def test_no_graph_where_it_would_not_compute_what_the_module_does(graph_wins, monkeypatch, why):
    reference, fused = _pair(DIGITS)
    x = torch.randn(2, 1, 8, 8)
    if why == "switched off":
        monkeypatch.setenv("ARCHC_CPU_GRAPH", "0")
        cpu_graph._available.cache_clear()
        monkeypatch.setattr(cpu_graph, "_available", cpu_graph._available.__wrapped__)
    with torch.set_grad_enabled(why == "autograd"):
        for _ in range(cpu_graph.WARM_UP + 2):
            if why == "train":
                fused.train()(x)
            else:
                fused(x)
    assert not any(graph_wins) and fused not in cpu_graph._choices


LRN_NET = """net lrn_net(classes = 5) {
    input 3x12x12
    default conv relu pad=same
    conv 3x3 16
    lrn 5
    maxpool 3x3/2
    conv 1x1 24
    lrn 5
    gap
    fc classes linear
}
"""


def test_the_graph_records_archcs_local_response_norm_not_torchs(graph_wins):
    """torch's LRN (a 3-D average pool over padded squares) is no oneDNN Graph partition and
    3x slower on channels-last tensors than the channel sums archc's own calls run; the trace
    records those, so GoogLeNet's graph is faster than its own calls (not so with torch's)."""
    reference, fused = _pair(LRN_NET)
    x = 3 * torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        for _ in range(cpu_graph.WARM_UP + 2):
            torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert graph_wins[-1]
    ops = [node.kind() for node in torch.jit.last_executed_optimized_graph().nodes()]
    assert ops.count("aten::square") == 2 and "aten::avg_pool3d" not in ops
    assert not cpu_graph.building()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation, the tracer's notes
        traced = torch.jit.trace(fused, x, check_trace=False)  # anyone else's: torch's op
    assert "aten::avg_pool3d" in str(traced.inlined_graph)


def test_a_users_module_in_the_net_runs_on_the_nets_own_calls(graph_wins):
    """A module of the user's may do more than compute (count, keep its input): the graph
    would not call it, so the net's own calls do."""
    class Counting(torch.nn.ReLU):
        calls = 0

        def forward(self, x):
            Counting.calls += 1
            return super().forward(x)

    reference, fused = _pair(DIGITS)
    fused.fc1 = torch.nn.Sequential(Counting(), fused.fc1)  # the gap's output is >= 0
    reference.fc1 = torch.nn.Sequential(torch.nn.ReLU(), reference.fc1)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        for _ in range(cpu_graph.WARM_UP + 2):
            torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert Counting.calls == cpu_graph.WARM_UP + 2 and not any(graph_wins)


def test_weights_that_keep_changing_stay_on_the_nets_own_calls(graph_wins, builds):
    """A net evaluated between training steps would rebuild its graph at every evaluation;
    after `MAX_BUILDS` graphs for a shape it keeps its own calls."""
    reference, fused = _pair(DIGITS)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        for _ in range(cpu_graph.MAX_BUILDS + 1):
            for _ in range(cpu_graph.WARM_UP + 1):
                torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
            for model in (reference, fused):  # a training step
                model.stem[0].weight.add_(0.01)
        for _ in range(cpu_graph.WARM_UP + 1):
            torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    assert len(builds) == cpu_graph.MAX_BUILDS and _choice(fused, x).graph is cpu_graph.OWN


# One of each family of ops the zoo's nets trace into a graph: SE gates with SiLU and
# sigmoid, hardswish, channel shuffles and splits, layer norm with layer scale and GELU,
# dense concats, asymmetric convs and average pools, fire modules, RegNet-Y's groups, LRN.
ZOO = ["efficientnet_b0", "mobilenet_v3_small", "shufflenet_v2_x0_5", "convnext_tiny",
       "densenet121", "inception_v3", "squeezenet1_1", "regnet_y_400mf", "googlenet"]


# By default three (LRN and concats, SE gates, groups); every one under -m slow, which CI runs.
@pytest.mark.parametrize("name", [n if n in ("googlenet", "efficientnet_b0", "regnet_y_400mf")
                                  else pytest.param(n, marks=pytest.mark.slow) for n in ZOO])
def test_every_family_of_the_zoo_fuses_into_a_graph_with_torchs_result(name):
    path = ROOT / "nets" / f"{name}.arch"
    reference, fused = perturbed_pair(path)
    x = _input(path)
    with torch.no_grad():
        graph = cpu_graph._compile(fused.eval(), x)
        expected = reference.eval()(x)
        assert graph is not None  # traced, frozen, and oneDNN Graph fused some of it
        got = graph(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())


@pytest.mark.slow  # CI runs it (`make test-slow`); 13 s here
def test_a_net_keeps_graphs_for_a_few_shapes_only(graph_wins, builds):
    """Each graph holds a copy of the weights: a server batching requests into many sizes
    would otherwise keep one for each."""
    reference, fused = _pair(DIGITS)
    with torch.no_grad():
        for batch in range(1, cpu_graph.MAX_GRAPHS + 3):
            x = torch.randn(batch, 1, 8, 8)
            for _ in range(cpu_graph.WARM_UP + 2):
                torch.testing.assert_close(fused(x), reference(x), rtol=1e-4, atol=1e-5)
    engines = [cpu_graph.engine(fused, torch.empty(b, 1, 8, 8))
               for b in range(1, cpu_graph.MAX_GRAPHS + 3)]
    assert engines == ["oneDNN Graph"] * cpu_graph.MAX_GRAPHS + ["own calls"] * 2
    assert len(builds) == cpu_graph.MAX_GRAPHS


def test_each_choice_is_logged_with_its_timings(graph_wins, caplog):
    reference, fused = _pair(DIGITS)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad(), caplog.at_level("INFO", logger="archc.backends.cpu.graph"):
        for _ in range(cpu_graph.WARM_UP + 1):
            fused(x)
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "ResnetDigits, input 3x1x8x8: oneDNN Graph 0.0 ms, own calls 1000.0 ms a forward; "
        "keeps the graph (graph built in ")


def test_a_net_with_a_graph_is_freed_when_its_user_drops_it(graph_wins):
    reference, fused = _pair(DIGITS)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        for _ in range(cpu_graph.WARM_UP + 2):
            fused(x)
    assert graph_wins[-1]
    alive = weakref.ref(fused)
    del fused
    gc.collect()
    assert alive() is None  # and with it its entry in the weakly keyed choices
