"""Backends: how a checked net's layers become lines of forward(), as values passed to emit.

A `Backend` is its table of calls for the ops it writes its own way (`calls`; every other op
reads as its spec's torch `call`, in the op's family file), the imports the emitted source
needs, its memory format, the fusion plan it runs (archc.codegen.triton.plan,
archc.codegen.cpu.plan), if any, and how it writes the two things a plan makes that are no
single layer: a GEMM over sibling convs and a concat buffer. The emitter writes no call of
its own.
Every backend builds the same layers (each op's `module` rule), so a module's `state_dict` is
the same whichever backend wrote it, and checkpoints move between them.

- `TORCH`: nn.Modules and torch.nn.functional, the reference: no rows of its own.
- `CPU`: every conv is one oneDNN primitive with the bn, shortcut and activation after it
  (archc.codegen.cpu.plan; `C.conv(...)`, archc.backends.cpu), the sum written over the
  shortcut where no later layer reads it, every fc one with its activation
  (`C.linear(...)`), local response norms archc's own; activations are channels last. The
  net's forward is `@C.inference`, which runs the net as one oneDNN Graph instead at an
  input shape where that measures faster.
- `TRITON`: the plan's GEMMs, depthwise convs and pools call archc.backends' kernels
  (`K.conv1x1(...)`, `K.dwconv(...)`), a row for each kind of plan step
  (archc.codegen.triton.calls); the other convs stay on cuDNN; activations are channels last.

A call row takes the op and its `Site` (archc.codegen.sites): the member it is stored in, its
arguments as Python text, whether it ends the net or a head, its plan step (None for the
torch backend) and the concat buffer it writes into, if any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from archc import ops
from archc.codegen.cpu.plan import POST_OP_ACTS
from archc.codegen.cpu.plan import plan as cpu_plan
from archc.codegen.fusion import KernelPlan
from archc.codegen.sites import Call, Site, torch_call
from archc.codegen.triton import calls as triton_calls
from archc.codegen.triton.plan import plan as triton_plan
from archc.ops.common import module_call
from archc.pipeline import Analysis


def _cpu_conv(op: ops.Conv, site: Site) -> str:
    act = site.act if site.epilogue else op.act
    if act not in POST_OP_ACTS + ("linear",):
        return module_call(op, site)  # an activation oneDNN does not apply: torch's own
    extra = (f", bn={site.bn}" if site.bn else "") + \
        (f", residual={site.residual}" if site.residual else "") + \
        (f", act={act!r}" if act != "linear" else "") + \
        (", into_residual=True" if site.epilogue and site.step.overwrites else "")
    return f"C.conv({site.args[0]}, {site.attr}{extra})"


def _cpu_linear(op: ops.FC, site: Site) -> str:
    if op.act not in POST_OP_ACTS + ("linear",):
        return module_call(op, site)
    return f"C.linear({site.args[0]}, {site.attr}" + \
        (f", act={op.act!r})" if op.act != "linear" else ")")


# The ops the cpu backend writes its own way; every other op reads as the torch backend's.
CPU_CALLS: dict[type, Call] = {
    ops.Conv: _cpu_conv,
    ops.FC: _cpu_linear,
    ops.LRN: lambda op, site: f"C.local_response_norm({site.args[0]}, {site.attr})",
}


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
    # step: the op it computes and its kernel's call (archc.codegen.triton.calls)
    decorator: str | None = None  # of the net's forward(): the cpu backend's chooses its
    # engine and owns its activations (archc.backends.cpu_graph.inference)

    def call(self, op: ops.OpT, site: Site) -> str:
        """Layer `op`'s forward() expression at `site`: its step's kernel row, else its op's."""
        kind = site.step.kind if site.step is not None else None
        if kind in self.steps and isinstance(op, self.steps[kind][0]):
            return self.steps[kind][1](op, site)
        return self.calls.get(type(op), torch_call)(op, site)


TORCH_IMPORTS = ("import torch", "from torch import nn", "from torch.nn import functional as F")
TORCH = Backend("torch", {}, TORCH_IMPORTS, channels_last=False, planner=None)
TRITON = Backend("triton", triton_calls.OP_CALLS,
                 TORCH_IMPORTS + ("from archc.backends import functional as K",),
                 channels_last=True, planner=triton_plan,
                 siblings=triton_calls.siblings,
                 buffer=lambda widths: f"K.ConcatBuffer({widths})", steps=triton_calls.STEP_CALLS)
CPU = Backend("cpu", CPU_CALLS, TORCH_IMPORTS + ("from archc.backends import cpu as C",),
              channels_last=True, planner=cpu_plan, decorator="C.inference")
BACKENDS = {backend.name: backend for backend in (TORCH, CPU, TRITON)}
