"""The whole net as oneDNN Graph partitions, where that measures faster: the cpu backend's
second engine, chosen per input shape.

oneDNN Graph (PyTorch's fuser for TorchScript, "LLGA") compiles a traced and frozen net into
fused partitions and runs each without the per-call set-up of `mkldnn::_convolution_pointwise`
that the cpu backend's own calls (archc.backends.cpu) pay at every conv: on this project's
2-core machine MobileNet-v2 ran 1.2-1.8x faster so, ResNet-50 1.1x, GoogLeNet 1.06-1.25x
(BENCHMARKS.md); VGG-A at batch 8 sometimes slower. So neither engine is the default for
every net: `inference`, the decorator of an emitted cpu net's forward, runs the net's own
calls for the first `WARM_UP` forwards of an input shape (a shape seen a few times is not
worth a compile: a test, an evaluation of a few batches); at the next it traces and freezes
the net, runs the graph until oneDNN Graph has compiled it, times `TRIALS` forwards of each
engine and keeps the faster for that shape, as cuDNN's benchmark mode keeps the fastest
algorithm. The trace records torch's ops, except a local response norm: archc's channel
sums (`building`), 3x faster than torch's op, which is no partition either. Either engine's
output is the torch backend's to fp32 rounding.

The graph runs only where it computes what the module would: every module in eval mode,
autograd off (`no_grad` or `inference_mode`), a float32 CPU input, nothing compiling or
tracing, no hook on a module of the net nor a global one, no torch mode, every module the
net's code or torch.nn's (a user's module is called, not traced away), torch built with
oneDNN Graph, `ARCHC_CPU_GRAPH` not 0. It holds the weights as constants (a copy in oneDNN's
layout, one per shape, for at most `MAX_GRAPHS` shapes a net), so each forward tests that
the net is as the graph froze it (archc.backends.cpu.net_state: modules, modes, hooks, every
tensor's version and pointer); a change (`load_state_dict`, an in-place edit, a module
replaced) drops the graph, and after
`MAX_BUILDS` graphs for a shape (weights that keep changing: a net evaluated during
training) that shape stays on the own calls. Two threads meeting a shape's ninth forward at
once may both build its graph; one is kept.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import warnings
import weakref
from dataclasses import dataclass

import torch

from .. import hooks
from . import net_state, owner

WARM_UP = 8  # forwards of a shape on the net's own calls before the engines are compared
TRIALS = 3  # timed forwards of each engine, in turn; the faster minimum wins
PROFILING_RUNS = 3  # TorchScript's executor profiles the graph before oneDNN Graph compiles it
MAX_BUILDS = 3  # graphs a shape may build; weights changed again: the net's own calls
MAX_GRAPHS = 3  # shapes of one net with a graph (each holds a copy of the weights); the next
# shapes seen often stay on the own calls


@dataclass
class Choice:
    """One input shape's engine: None until chosen, then the graph or `OWN`."""

    seen: int = 0
    graph: torch.jit.ScriptModule | str | None = None
    frozen: net_state.Snapshot | None = None  # what the graph holds as constants
    builds: int = 0  # graphs built for this shape: new weights cost another


OWN = "own"  # the net's own calls measured faster for this shape
_log = logging.getLogger(__name__)  # each choice, its timings: `logging` at INFO shows them
_choices: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # net -> {shape: Choice}
_tracer = threading.local()  # .net: the net this thread traces into a graph


def building() -> bool:
    """Whether this thread is tracing a net into its graph: the trace may record archc's own
    decompositions (a local response norm's channel sums), which the graph runs as they are."""
    return getattr(_tracer, "net", None) is not None


def inference(forward):
    """`forward` of an emitted cpu net: its own calls, or its oneDNN Graph where faster."""
    @functools.wraps(forward)
    def run(net: torch.nn.Module, x: torch.Tensor):
        if torch.compiler.is_compiling() or torch.jit.is_tracing():
            return forward(net, x)  # traced: torch's ops
        graph = _graph_for(net, forward, x)
        if graph is not None:
            return graph(x)
        with owner.owning(net):
            return forward(net, x)
    return run


def engine(net: torch.nn.Module, x: torch.Tensor) -> str:
    """Which engine serves `x`'s shape now: "oneDNN Graph", "own calls" once chosen, or
    "undecided" (fewer than `WARM_UP` forwards of it, or a change dropped its graph)."""
    choice = _choices.get(net, {}).get((tuple(x.shape), x.stride()))
    if choice is None or choice.graph is None:
        return "undecided"
    return "own calls" if choice.graph is OWN else "oneDNN Graph"


def _graph_for(net: torch.nn.Module, forward, x: torch.Tensor):
    """The graph to run `x` on, or None: the net's own calls."""
    if not _may_run(x):
        return None
    key = (tuple(x.shape), x.stride())
    choice = _choices.get(net, {}).get(key)
    if choice is not None and choice.graph is OWN:
        return None  # decided: nothing to check
    if choice is not None and isinstance(choice.graph, torch.jit.ScriptModule) and \
            net_state.unchanged(choice.frozen, net):
        return choice.graph  # the common case: no walk over the modules
    now = net_state.snapshot(net)
    if now is None:
        return None
    choice = _choices.setdefault(net, {}).setdefault(key, Choice())
    if choice.graph is not None:
        if net_state.same(choice.frozen, now):  # a registration elsewhere in the process
            choice.frozen = now
            return choice.graph
        choice.graph, choice.seen = None, 0  # new weights or modules: measure again later
        if choice.builds >= MAX_BUILDS:  # weights that keep changing: a net in training
            choice.graph = OWN
            return None
    choice.seen += 1
    if choice.seen <= WARM_UP:
        return None
    graphs = sum(isinstance(c.graph, torch.jit.ScriptModule) for c in _choices[net].values())
    if graphs >= MAX_GRAPHS:  # each holds a copy of the weights
        choice.graph = OWN
        return None
    choice.graph = _choose(net, forward, x)
    if choice.graph is OWN:
        return None
    choice.builds, choice.frozen = choice.builds + 1, now
    return choice.graph


def _may_run(x: torch.Tensor) -> bool:
    return not torch.is_grad_enabled() and x.device.type == "cpu" and \
        x.dtype == torch.float32 and x.dim() == 4 and _available() and not hooks.watched()


@functools.cache
def _available() -> bool:
    return os.environ.get("ARCHC_CPU_GRAPH", "1") != "0" and \
        hasattr(torch._C, "_jit_llga_enabled") and torch.backends.mkldnn.is_available()


def _choose(net: torch.nn.Module, forward, x: torch.Tensor):
    """The frozen graph for `x`'s shape if it runs faster than the net's own calls, else OWN
    (also where it cannot be built or oneDNN Graph fused nothing)."""
    start = time.perf_counter()
    graph = _compile(net, x)
    if graph is None:
        return OWN
    built = time.perf_counter() - start

    def own(x):
        with owner.owning(net):
            return forward(net, x)
    timed = {graph: [], own: []}
    for _ in range(TRIALS):  # in turn, so a drift of the machine's speed hits both alike
        for engine, times in timed.items():
            times.append(_seconds(engine, x))
    faster = min(timed[graph]) < min(timed[own])
    _log.info("%s, input %s: oneDNN Graph %.1f ms, own calls %.1f ms a forward; keeps %s "
              "(graph built in %.1f s)", type(net).__name__, "x".join(map(str, x.shape)),
              min(timed[graph]) * 1e3, min(timed[own]) * 1e3,
              "the graph" if faster else "its own calls", built)
    return graph if faster else OWN


def _compile(net: torch.nn.Module, x: torch.Tensor) -> torch.jit.ScriptModule | None:
    fusing, graph, failure = torch._C._jit_llga_enabled(), None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation, the tracer's notes
        torch.jit.enable_onednn_fusion(True)  # only while its partitions are made
        _tracer.net = net
        try:
            graph = torch.jit.freeze(torch.jit.trace(net, x, check_trace=False))
            for _ in range(PROFILING_RUNS):
                graph(x)
            if "oneDNNFusionGroup" not in str(torch.jit.last_executed_optimized_graph()):
                graph = None  # nothing fused: no faster than the net's own calls
        except Exception as error:  # noqa: BLE001  (the net's own calls still serve it)
            graph, failure = None, error
        finally:
            torch.jit.enable_onednn_fusion(fusing)
            _tracer.net = None
    if failure is not None:
        warnings.warn(f"archc.backends.cpu.graph: {type(failure).__name__}: {failure}; the "
                      "net runs on its own calls", stacklevel=4)
    return graph


def _seconds(engine, x: torch.Tensor) -> float:
    start = time.perf_counter()
    engine(x)
    return time.perf_counter() - start
