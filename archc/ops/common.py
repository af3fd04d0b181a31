"""Rules several op families share: windows (conv and pools), passing a value on, and the
pieces of PyTorch source a constructor or a module call is written with."""

from __future__ import annotations

from archc.errors import ArchError
from archc.ops.activation import activate
from archc.ops.base import Cost, Field, Shape


def out_size(size: int, k: int, stride: int, pad: int, ceil: bool) -> int:
    span = size + 2 * pad - k
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1  # Caffe: the last window must start inside the image or the left padding
    return out


def windowed(op, x: Shape, channels: int, ceil: bool) -> Shape:
    """The output of a window `op.window` slid by `op.stride` over `x` padded by `op.pad`."""
    kernel = op.window
    if kernel[0] > x.h + 2 * op.pad[0] or kernel[1] > x.w + 2 * op.pad[1]:
        raise ArchError(f"window {kernel[0]}x{kernel[1]} is larger than its input "
                        f"{x.h}x{x.w}" + (f" padded by {op.pad[0]}" if op.pad[0] else ""))
    h = out_size(x.h, kernel[0], op.stride, op.pad[0], ceil)
    w = out_size(x.w, kernel[1], op.stride, op.pad[1], ceil)
    return Shape(channels, h, w)


def grow(field: Field, kernel: int, stride: int) -> Field:
    return Field(field.size + (kernel - 1) * field.jump, field.jump * stride)


def whole(inputs) -> Field:
    """A layer that sees its whole input (global pool, fc)."""
    field, shape = inputs[0]
    return grow(field, shape.h, shape.h)


def widest(inputs) -> Field:
    """A join (concat, sum): the widest field and the coarsest stride of its inputs."""
    return Field(max(f.size for f, _ in inputs), max(f.jump for f, _ in inputs))


def same_shape(op, inputs, context) -> Shape:
    return inputs[0]


def same_field(op, inputs) -> Field:
    return inputs[0][0]


def free(op, inputs, out) -> Cost:
    return Cost()


def pad_text(pad: tuple[int, int]) -> str:
    if pad == (0, 0):
        return ""
    return f" pad={pad[0]}" if pad[0] == pad[1] else f" pad={pad[0]}x{pad[1]}"


# ---- PyTorch source ------------------------------------------------------------------------


def module_call(op, site) -> str:
    """`self.conv1(x)`, with the op's activation flag applied."""
    return activate(getattr(op, "act", "linear"), f"{site.attr}({site.args[0]})")


def square(pair: tuple[int, int]):
    return pair[0] if pair[0] == pair[1] else pair


class Text(str):
    """Python source, printed as it is (a block parameter `s`, or a number)."""

    def __repr__(self) -> str:
        return str(self)


def options(**pairs) -> str:
    """`, key=value` for each value that differs from its default."""
    return "".join(f", {k}={v!r}" for k, (v, default) in pairs.items() if v != default)
