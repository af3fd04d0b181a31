"""Lower: `Analysis` -> a torch.nn.Module, by executing the source `archc.codegen.emit` writes.

Torch starts here: with export.py and weights.py, the only modules outside archc/train that
import it at import time (tests/test_boundaries.py holds that). One code path serves both
`archc.compile()` (in memory) and `archc compile -o net.py` (on disk), so the two cannot drift.
"""

from __future__ import annotations

import itertools
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import torch

from archc.analysis.cost import total
from archc.backends.backend import TORCH, Backend
from archc.backends.registry import BACKENDS
from archc.codegen.emit import Emitted, emit
from archc.errors import ArchError, UsageError
from archc.lang import ast
from archc.pipeline import Analysis, analyse


@dataclass(frozen=True)
class Lowered:
    module: torch.nn.Module
    emitted: Emitted
    analysis: Analysis


@dataclass(frozen=True)
class Built:
    """What a class archc lowered was built from (its `_archc_built`): archc.freeze lowers
    the same net again for the cpu engine."""

    analysis: Analysis
    heads: bool
    logits: bool


def lower(analysis: Analysis, heads: bool = True, logits: bool = False,
          backend: Backend = TORCH) -> Lowered:
    _refuse_if_too_big(analysis, heads)
    emitted = emit(analysis, heads, logits, backend)
    source = _source_module(analysis.graph.name)
    exec(compile(emitted.source, f"<archc {analysis.path}>", "exec"), source.__dict__)
    net_class = getattr(source, emitted.class_name)
    net_class._archc_built = Built(analysis, heads, logits)
    return Lowered(net_class(), emitted, analysis)


_lowered = itertools.count()


def _source_module(net: str) -> types.ModuleType:
    """A module for the emitted source, registered in sys.modules under a name of its own:
    torch.compile imports the module of a function it inlines from another one's frame (the
    triton backend's functions call the source's LayerNorm2d in training), and two lowerings of
    one net (another backend, other options) must not share their globals."""
    name = f"archc_generated_{net}_{next(_lowered)}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    return module


BYTES_PER_PARAMETER = 4  # float32, as the module is built


def _refuse_if_too_big(analysis: Analysis, heads: bool) -> None:
    """An ArchError, before anything is allocated, for parameters that would not fit in the
    memory this machine has available (torch would fail with a raw allocation error)."""
    nodes = analysis.graph.order() if heads else analysis.graph.main_nodes()
    params = total(analysis.costs, nodes).params
    need, have = params * BYTES_PER_PARAMETER, available_memory()
    if have is not None and need > have:
        raise ArchError(f"the net's {params:,} parameters need {need / 2**30:.1f} GiB in float32; "
                        f"this machine has {have / 2**30:.1f} GiB available",
                        ast.first_line(analysis.graph.syntax))


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def compile_net(path_or_source: str | Path, backend: str = "torch", heads: bool = True,
                overrides: dict[str, int | float] | None = None,
                logits: bool = False) -> torch.nn.Module:
    """A checked .arch network as a torch.nn.Module (archc.codegen.emit says what forward returns).

    `path_or_source` is a path, or the text of a net (anything containing "{"), whose `use`
    imports are then looked up from the current directory. `heads=False` builds the
    deployment network without auxiliary heads; `logits=True` skips a final softmax in eval
    mode too. The backend (archc.backends) decides only how forward() computes;
    every backend's `state_dict` is the same. The default, "torch", is the plain reference
    (the file `archc compile` writes by default: torch alone runs it); "triton" runs the
    fused 1x1 convs and the pools as archc.backends' Triton kernels; "cpu" is the module
    inside archc.freeze's engine (archc.backends.cpu: oneDNN convs with bn folded, at CPU
    inference, caches beside the module), which `archc.compile(backend="cpu")` wraps.
    Raises ArchError for a broken program.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}' (available: {', '.join(BACKENDS)})")
    text = str(path_or_source)
    if isinstance(path_or_source, str) and "{" in text:
        analysis = analyse("<source>.arch", overrides, text=text)
    else:
        analysis = analyse(path_or_source, overrides)
    return lower(analysis.raise_errors(), heads, logits, BACKENDS[backend]).module


def training_loss(module: torch.nn.Module, outputs, targets: torch.Tensor) -> torch.Tensor:
    """The loss for what a compiled module returns in training mode.

    Training mode returns logits (a final softmax runs in eval mode only), so this is
    cross-entropy on the main output plus, for a net with heads, each head's cross-entropy
    weighted by the module's `loss_weights` (GoogLeNet: 0.3 each, as in the paper).
    """
    cross_entropy = torch.nn.functional.cross_entropy
    if isinstance(outputs, tuple):
        main, aux = outputs
        weights = module.loss_weights
        return cross_entropy(main, targets) + sum(
            weights[name] * cross_entropy(logits, targets) for name, logits in aux.items())
    return cross_entropy(outputs, targets)
