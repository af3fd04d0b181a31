"""The cpu backend's call rows: every conv and fc one oneDNN call with what follows it.

Each conv is one oneDNN primitive with the bn, shortcut and activation after it (the plan,
archc.backends.cpu.plan; `C.conv(...)`, archc.backends.cpu.runtime), the sum written over the
shortcut where no later layer reads it, every fc one with its activation (`C.linear(...)`),
local response norms archc's own; activations are channels last. The net's forward is
`@C.inference`, which runs the net as one oneDNN Graph instead at an input shape where that
measures faster. An activation oneDNN has no post-op for stays torch's own call. No torch.
"""

from __future__ import annotations

from archc import ops
from archc.backends.backend import TORCH_IMPORTS, Backend, Call, Site
from archc.backends.cpu.plan import POST_OP_ACTS
from archc.backends.cpu.plan import plan as cpu_plan
from archc.ops.common import module_call


def _conv(op: ops.Conv, site: Site) -> str:
    act = site.act if site.epilogue else op.act
    if act not in POST_OP_ACTS + ("linear",):
        return module_call(op, site)  # an activation oneDNN does not apply: torch's own
    extra = (f", bn={site.bn}" if site.bn else "") + \
        (f", residual={site.residual}" if site.residual else "") + \
        (f", act={act!r}" if act != "linear" else "") + \
        (", into_residual=True" if site.epilogue and site.step.overwrites else "")
    return f"C.conv({site.args[0]}, {site.attr}{extra})"


def _linear(op: ops.FC, site: Site) -> str:
    if op.act not in POST_OP_ACTS + ("linear",):
        return module_call(op, site)
    return f"C.linear({site.args[0]}, {site.attr}" + \
        (f", act={op.act!r})" if op.act != "linear" else ")")


# The ops the cpu backend writes its own way; every other op reads as the torch backend's.
CALLS: dict[type, Call] = {
    ops.Conv: _conv,
    ops.FC: _linear,
    ops.LRN: lambda op, site: f"C.local_response_norm({site.args[0]}, {site.attr})",
}

CPU = Backend("cpu", CALLS, TORCH_IMPORTS + ("from archc.backends import cpu as C",),
              channels_last=True, planner=cpu_plan, decorator="C.inference")
