"""Activations: `relu`, `relu6`, `leakyrelu slope=0.2`, `sigmoid`, `tanh`, `hardswish`,
`hardsigmoid` (MobileNet-v3's gate: relu6(x + 3) / 6), `silu` (x * sigmoid(x), EfficientNet's
swish) and `gelu` (exact, erf-based, as torch's default and ConvNeXt's).

Each is a layer of its own and a flag on conv and fc (`conv 3x3 64 relu6`; a flag leakyrelu
takes the default slope). Elementwise: same shape, same field, no parameters and no MACs (the
convention of every table: only conv and fc multiply-accumulate). In forward() an activation
is a call without state, as torchvision writes a ReLU (`F.relu(x)`), not a member.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.ops.args import real_arg
from archc.ops.base import Cost, OpSpec, Signature, Statement

# language name -> (forward() call, stats title)
CALLS = {"relu": ("F.relu({})", "ReLU"), "relu6": ("F.relu6({})", "ReLU6"),
         "leakyrelu": ("F.leaky_relu({}, {slope!r})", "leaky ReLU"),
         "sigmoid": ("torch.sigmoid({})", "sigmoid"), "tanh": ("torch.tanh({})", "tanh"),
         "hardswish": ("F.hardswish({})", "hard swish"),
         "hardsigmoid": ("F.hardsigmoid({})", "hard sigmoid"), "silu": ("F.silu({})", "SiLU"),
         "gelu": ("F.gelu({})", "GELU")}
ACTIVATION_LAYERS = tuple(CALLS)
ACTIVATIONS = ("linear", *ACTIVATION_LAYERS)  # the flags conv and fc take


@dataclass(frozen=True)
class Act:
    kind: str  # one of ACTIVATION_LAYERS
    slope: float = 0.0  # leakyrelu's negative slope


def activate(act: str, value: str, slope: float = 0.01) -> str:
    """`value` with activation `act` applied, as forward() writes it."""
    return value if act == "linear" else CALLS[act][0].format(value, slope=slope)


def _statement(kind: str) -> Statement:
    def make(args, span) -> Act:
        return Act(kind, real_arg(args, "slope", span) if kind == "leakyrelu" else 0.0)
    return Statement(Signature((), ("slope",) if kind == "leakyrelu" else ()), make)


ACT = OpSpec(
    type=Act,
    statements={kind: _statement(kind) for kind in ACTIVATION_LAYERS},
    group=None,
    name=lambda op: op.kind,
    describe=lambda op: op.kind,
    options=lambda op: "",
    titles={kind: title for kind, (_, title) in CALLS.items()},
    title_detail=lambda op: "",
    arity="one",
    layout="keeps",
    shape=lambda op, inputs, context: inputs[0],
    field=lambda op, inputs: inputs[0][0],
    cost=lambda op, inputs, out: Cost(),
    folds_bn=False,
    draw="other",
    width="same",
    given=(),
    module=None,
    helper="",
    reads="as-is",
    call=lambda op, site: activate(op.kind, site.args[0], op.slope),
    plan="torch",
    aliases=False,
)
SPECS = (ACT,)
