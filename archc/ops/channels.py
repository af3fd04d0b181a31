"""Channel rearrangements, as ShuffleNet-v2 uses them: `chunk 2 1` (the second of two equal
channel chunks: torch's `x.chunk(2, dim=1)[1]`, a view) and `shuffle 2` (channel shuffle:
the channels seen as 2 groups, interleaved, as torchvision's channel_shuffle does). Neither
has parameters or MACs (FlopCounterMode counts neither); both keep the spatial size.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.errors import ArchError
from archc.ops.args import int_arg
from archc.ops.base import OpSpec, Shape, Signature, Statement
from archc.ops.common import free, same_field


@dataclass(frozen=True)
class Chunk:
    chunks: int  # equal parts of the channels
    index: int  # which one, from 0


@dataclass(frozen=True)
class Shuffle:
    groups: int


def make_chunk(args, span) -> Chunk:
    chunks = int_arg(args, "chunks", span, minimum=1)
    index = int_arg(args, "index", span, minimum=0)
    if index >= chunks:
        raise ArchError(f"chunk index {index} is past the last of {chunks} chunks (they count "
                        "from 0)", args["index"].span)
    return Chunk(chunks, index)


def _divides(parts: int, channels: int, what: str) -> None:
    if channels % parts:
        raise ArchError(f"{what} {parts} does not divide the {channels} input channels")


def chunk_shape(op: Chunk, inputs, context) -> Shape:
    (x,) = inputs
    _divides(op.chunks, x.c, "chunks")
    return Shape(x.c // op.chunks, x.h, x.w)


def shuffle_shape(op: Shuffle, inputs, context) -> Shape:
    _divides(op.groups, inputs[0].c, "groups")
    return inputs[0]


# torchvision's channel_shuffle, written out.
CHANNEL_SHUFFLE = '''def channel_shuffle(x, groups):
    """The channels as `groups` groups, interleaved: ShuffleNet's channel shuffle."""
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)
'''

CHUNK = OpSpec(
    type=Chunk,
    statements={"chunk": Statement(Signature(("chunks", "index")), make_chunk)},
    group=None,
    name=lambda op: "chunk",
    describe=lambda op: f"chunk {op.chunks} {op.index}",
    options=lambda op: "",
    titles={"chunk": "channel chunk"},
    title_detail=lambda op: "",
    arity="one",
    layout="keeps",
    shape=chunk_shape,
    field=same_field,
    cost=free,
    folds_bn=False,
    draw="other",
    width="divided",
    given=(),
    module=None,
    helper="",
    reads="as-is",
    call=lambda op, site: f"{site.args[0]}.chunk({op.chunks}, dim=1)[{op.index}]",
    plan="torch",
    aliases=True,
)

SHUFFLE = OpSpec(
    type=Shuffle,
    statements={"shuffle": Statement(Signature(("groups",)), lambda args, span: Shuffle(
        int_arg(args, "groups", span)))},
    group=None,
    name=lambda op: "shuffle",
    describe=lambda op: f"shuffle {op.groups}",
    options=lambda op: "",
    titles={"shuffle": "channel shuffle"},
    title_detail=lambda op: "",
    arity="one",
    layout="spatial",
    shape=shuffle_shape,
    field=same_field,
    cost=free,
    folds_bn=False,
    draw="other",
    width="same",
    given=(),
    module=None,
    helper=CHANNEL_SHUFFLE,
    reads="spatial",
    call=lambda op, site: f"channel_shuffle({site.args[0]}, {op.groups})",
    plan="torch",
    aliases=False,
)
SPECS = (CHUNK, SHUFFLE)
