"""Activations: `relu`, `relu6`, `leakyrelu slope=0.2`, `sigmoid`, `tanh`, `hardswish`,
`hardsigmoid` (MobileNet-v3's gate: relu6(x + 3) / 6), `silu` (x * sigmoid(x), EfficientNet's
swish) and `gelu` (exact, erf-based, as torch's default and ConvNeXt's).

Each is a layer of its own and a flag on conv and fc (`conv 3x3 64 relu6`; a flag leakyrelu
takes the default slope). Elementwise: same shape, same field, no parameters and no MACs (the
convention of every table: only conv and fc multiply-accumulate). In forward() an activation
is a call without state, as torchvision writes a ReLU (`F.relu(x)`), not a member.

`TABLE` is the one place an activation is named: its torch call, its title, whether Triton's
epilogue and oneDNN's post-ops apply it. The backends' plans, their runtimes
(archc.backends.activation) and `archc import` read it (tests/test_registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.ops.args import real_arg
from archc.ops.base import Cost, OpSpec, Signature, Statement

PostOp = tuple[str, tuple[float, ...], str]  # oneDNN's (attribute, scalars, algorithm)


@dataclass(frozen=True)
class Activation:
    """Everything archc knows about one activation. Adding one is a row here, plus a branch
    in archc.backends.triton.epilogue where `triton` says the kernels apply it."""

    name: str  # the language's word: a layer (`silu`) and a flag of conv and fc
    torch: str  # torch's function as forward() calls it (F: torch.nn.functional)
    module: str  # torch's module class, as `archc import` recognises it
    title: str  # the layer column of `archc stats`
    triton: bool  # Triton's epilogue applies it to a kernel's accumulator
    onednn: PostOp | None  # oneDNN's post-op, as mkldnn::_convolution_pointwise takes it
    #                        (torch/_inductor/mkldnn_ir.py's map); None: torch's own call
    onnx: tuple[str, dict[str, float]] | None  # the ONNX op that is it, with the attributes
    #                        it must have (`archc import`); None: ONNX writes it otherwise
    keys: tuple[tuple[str, str, str], ...] = ()  # its layer's keys, with torch's and ONNX's
    #                                               names for them
    onnx_gate: str | None = None  # where ONNX has no op for it: x * GATE(x), GATE's op


TABLE = (
    Activation("relu", "F.relu", "nn.ReLU", "ReLU", True, ("relu", (), ""), ("Relu", {})),
    Activation("relu6", "F.relu6", "nn.ReLU6", "ReLU6", True, ("hardtanh", (0.0, 6.0), ""),
               ("Clip", {"min": 0.0, "max": 6.0})),
    Activation("leakyrelu", "F.leaky_relu", "nn.LeakyReLU", "leaky ReLU", False, None,
               ("LeakyRelu", {}), keys=(("slope", "negative_slope", "alpha"),)),
    Activation("sigmoid", "torch.sigmoid", "nn.Sigmoid", "sigmoid", True, ("sigmoid", (), ""),
               ("Sigmoid", {})),
    Activation("tanh", "torch.tanh", "nn.Tanh", "tanh", True, ("tanh", (), ""), ("Tanh", {})),
    Activation("hardswish", "F.hardswish", "nn.Hardswish", "hard swish", True,
               ("hardswish", (), ""), ("HardSwish", {})),
    Activation("hardsigmoid", "F.hardsigmoid", "nn.Hardsigmoid", "hard sigmoid", True,
               ("hardsigmoid", (), ""), ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5})),
    Activation("silu", "F.silu", "nn.SiLU", "SiLU", True, ("swish", (), ""), None,
               onnx_gate="Sigmoid"),
    Activation("gelu", "F.gelu", "nn.GELU", "GELU", True, ("gelu", (), "none"), ("Gelu", {})),
)
BY_NAME = {row.name: row for row in TABLE}
ACTIVATION_LAYERS = tuple(BY_NAME)
ACTIVATIONS = ("linear", *ACTIVATION_LAYERS)  # the flags conv and fc take


@dataclass(frozen=True)
class Act:
    kind: str  # one of ACTIVATION_LAYERS
    slope: float = 0.0  # leakyrelu's negative slope


def activate(act: str, value: str, slope: float = 0.01) -> str:
    """`value` with activation `act` applied, as forward() writes it."""
    if act == "linear":
        return value
    row = BY_NAME[act]
    return f"{row.torch}({value}, {slope!r})" if row.keys else f"{row.torch}({value})"


def _statement(row: Activation) -> Statement:
    keys = tuple(key for key, *_ in row.keys)

    def make(args, span) -> Act:
        return Act(row.name, real_arg(args, "slope", span) if "slope" in keys else 0.0)
    return Statement(Signature((), keys), make)


ACT = OpSpec(
    type=Act,
    statements={row.name: _statement(row) for row in TABLE},
    group=None,
    name=lambda op: op.kind,
    describe=lambda op: op.kind,
    options=lambda op: "",
    titles={row.name: row.title for row in TABLE},
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
