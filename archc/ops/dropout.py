"""Regularisers that act in training only: `dropout 0.4` zeroes that fraction of its input's
elements (and scales the rest by 1/(1-p), PyTorch's convention); `droppath 0.1` (stochastic
depth, Huang et al. 2016) zeroes the whole value for that fraction of the batch's images (and
scales the rest likewise): in a residual branch, the branch is skipped for them, as
torchvision's StochasticDepth "row" mode does in EfficientNet and ConvNeXt. At inference both
pass their input on. No parameters, no MACs, the input's shape and layout."""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError
from archc.ops.args import real_arg
from archc.ops.base import OpSpec, Signature, Statement
from archc.ops.common import free, module_call, same_field, same_shape


@dataclass(frozen=True)
class Dropout:
    p: float


@dataclass(frozen=True)
class DropPath:
    p: float  # the fraction of images whose value is dropped


def _fraction(args, span, op: str) -> float:
    if "p" not in args:
        raise ArchError(f"missing p (the fraction dropped, e.g. {op} 0.4)", span)
    p = real_arg(args, "p", span)
    if not 0 <= p < 1:
        raise ArchError(f"{op} fraction must be in [0, 1), got {p}", args["p"].span)
    return p


# torchvision.ops.StochasticDepth(p, "row"), written out: the same draws from the same seed.
STOCHASTIC_DEPTH = '''class StochasticDepth(nn.Module):
    """Stochastic depth: in training, zero the value of a random fraction p of the batch's
    images and scale the rest by 1 / (1 - p); at inference, pass it on."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.dim() - 1), dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(keep).div_(keep)
        return x * noise
'''


DROPOUT = OpSpec(
    type=Dropout,
    statements={"dropout": Statement(Signature(("p",)),
                                     lambda args, span: Dropout(_fraction(args, span, "dropout")))},
    group=None,
    name=lambda op: "dropout",
    describe=lambda op: f"dropout {op.p:g}",
    options=lambda op: "",
    titles={"dropout": "dropout"},
    title_detail=lambda op: f" ({op.p:.0%})",
    arity="one",
    layout="keeps",
    shape=same_shape,
    field=same_field,
    cost=free,
    folds_bn=False,
    draw="other",
    width="same",
    given=("p",),
    module=lambda op, texts: f"nn.Dropout({texts['p']})",
    helper="",
    reads="as-is",
    call=module_call,
    plan="torch",
    aliases=True,
)
DROPPATH = OpSpec(
    type=DropPath,
    statements={"droppath": Statement(Signature(("p",)), lambda args, span: DropPath(
        _fraction(args, span, "droppath")))},
    group=None,
    name=lambda op: "droppath",
    describe=lambda op: f"droppath {op.p:g}",
    options=lambda op: "",
    titles={"droppath": "stochastic depth"},
    title_detail=lambda op: f" ({op.p:.3g})",
    arity="one",
    layout="keeps",
    shape=same_shape,
    field=same_field,
    cost=free,
    folds_bn=False,
    draw="other",
    width="same",
    given=("p",),
    module=lambda op, texts: f"StochasticDepth({texts['p']})",
    helper=STOCHASTIC_DEPTH,
    reads="as-is",
    call=module_call,
    plan="torch",
    aliases=True,
)
SPECS = (DROPOUT, DROPPATH)
