"""What a backend is to the emitter: its call rows, imports, memory format and fusion plan.

A `Backend` is its table of calls for the ops it writes its own way (`calls`; every other op
reads as its spec's torch `call`, in the op's family file), the imports the emitted source
needs, its memory format, the fusion plan it runs, if any, and how it writes the two things a
plan makes that are no single layer: a GEMM over sibling convs and a concat buffer. The
emitter (archc.codegen) writes no call of its own. Every backend builds the same layers (each
op's `module` rule), so a module's `state_dict` is the same whichever backend wrote it, and
checkpoints move between them.

A call row takes the layer's op and its `Site`: the member it is stored in, its arguments as
Python text, whether it ends the net or a head, its plan step and what the step computes with
it, and the concat buffer it writes into, if any. It returns the forward() expression.

`TORCH` is the reference: nn.Modules and torch.nn.functional, no rows of its own. The others
live in their folders (archc.backends.cpu.calls, archc.backends.triton.calls) and
archc.backends.registry names them all. No torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from archc import ops
from archc.backends.fusion import KernelPlan, Step
from archc.pipeline import Analysis


@dataclass(frozen=True)
class Site:
    """Where a layer's call is written: what a call row needs besides the op."""

    attr: str  # the member holding its module: `self.branch3x3[0]`
    args: list[str]  # its inputs as Python text, flattened where the op wants N x C
    final: bool  # it ends the net or a head
    step: Step | None  # its plan step (the triton backend)
    into: str | None = None  # a concat buffer: `buffer.part(0)` for a branch, `buffer` itself
    bn: str | None = None  # a fused GEMM's batch norm member: `self.residual.bn3`
    residual: str | None = None  # the value a fused GEMM adds in its epilogue
    relu: bool | None = None  # a fused step's ReLU (a flag, or a relu layer after it)
    epilogue: bool = False  # the step's bn, sum and ReLU layers are written in this call
    pool: str | None = None  # the member of the step's 3x3/1 max pool, which the GEMM takes
    #                          as it loads its input
    second: str | None = None  # an mlp step's second 1x1 conv member
    act: str = "linear"  # a fused step's activation layer
    norm: str | None = None  # a fused depthwise conv's layer norm member
    scale: str | None = None  # a fused GEMM's layer scale member


Call = Callable[[ops.OpT, Site], str]


def torch_call(op, site: Site) -> str:
    """The op's call as its spec writes it (the torch backend's)."""
    return ops.spec(op).call(op, site)


@dataclass(frozen=True)
class Backend:
    name: str
    calls: dict[type, Call]  # its own rows; an op without one reads as its spec's `call`
    imports: tuple[str, ...]
    channels_last: bool  # forward() converts its input, and the kernels keep the format
    planner: Callable[[Analysis], KernelPlan] | None  # its fusion plan, None: no fusions
    # the plan's merged GEMM over sibling convs (members, input, relu, concat slice), and the
    # concat buffer its kernels write into (its widths attribute): where its plan makes them
    siblings: Callable[[list[str], str, bool, str | None], str] | None = None
    buffer: Callable[[str], str] | None = None
    steps: dict[str, tuple[type, Call]] = field(default_factory=dict)  # by the kind of plan
    # step: the op it computes and its kernel's call (archc.backends.triton.calls)
    decorator: str | None = None  # of the net's forward(): the cpu backend's chooses its
    # engine and owns its activations (archc.backends.cpu.graph.inference)

    def call(self, op: ops.OpT, site: Site) -> str:
        """Layer `op`'s forward() expression at `site`: its step's kernel row, else its op's."""
        kind = site.step.kind if site.step is not None else None
        if kind in self.steps and isinstance(op, self.steps[kind][0]):
            return self.steps[kind][1](op, site)
        return self.calls.get(type(op), torch_call)(op, site)


TORCH_IMPORTS = ("import torch", "from torch import nn", "from torch.nn import functional as F")
TORCH = Backend("torch", {}, TORCH_IMPORTS, channels_last=False, planner=None)
