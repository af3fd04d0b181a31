"""Sites: where a layer's call is written, and what a backend's call row is.

A call row (archc.codegen.backend_calls, archc.codegen.triton.calls) takes the layer's op and
its `Site`: the member it is stored in, its arguments as Python text, whether it ends the net
or a head, its plan step and what the step computes with it, and the concat buffer it writes
into, if any. It returns the forward() expression. No torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archc import ops
from archc.codegen.fusion import Step


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
