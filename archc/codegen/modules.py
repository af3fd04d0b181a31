"""The PyTorch layer each op lowers to: one row per op in `MODULES`, None for the ops that
are plain code in forward() (concat, flatten, softmax) or no layer at all (input).

Activations and the additions of a `sum` are plain code in forward() too.

A row takes the op and `texts`, the constructor arguments that may be expressions in a
block's parameters, already printed as Python: "in" and "out" channels, "features_in" (an
fc's flattened input), "groups" and "p". Everything else is the op's own number. A test
checks that every op has a row.
"""

from __future__ import annotations

from archc import ops


def _conv(op: ops.Conv, texts: dict[str, str]) -> str:
    options = _options(stride=(_Text(texts.get("stride", str(op.stride))), _Text("1")),
                       padding=(_square(op.pad), 0), bias=(op.bias, True))
    groups = f", groups={texts['groups']}" if texts["groups"] != "1" else ""
    return f"nn.Conv2d({texts['in']}, {texts['out']}, {_square(op.window)}{options}{groups})"


def _pool(op: ops.Pool, texts: dict[str, str]) -> str:
    kind = "MaxPool2d" if op.kind == "max" else "AvgPool2d"
    stride = _Text(texts.get("stride", str(op.stride)))  # always written: torch's default
    options = _options(stride=(stride, None), padding=(_square(op.pad), 0),  # is the window
                       ceil_mode=(op.ceil, False))
    return f"nn.{kind}({_square(op.window)}{options})"


def _lrn(op: ops.LRN, texts: dict[str, str]) -> str:
    return f"nn.LocalResponseNorm({op.size}, alpha={op.alpha!r}, beta={op.beta!r}, k={op.k!r})"


def _bn(op: ops.BatchNorm, texts: dict[str, str]) -> str:
    options = _options(eps=(op.eps, 1e-5), momentum=(op.momentum, 0.1))
    return f"nn.BatchNorm2d({texts['in']}{options})"


MODULES = {
    ops.Input: None,
    ops.Conv: _conv,
    ops.Pool: _pool,
    ops.GlobalAvgPool: lambda op, texts: "nn.AdaptiveAvgPool2d(1)",
    ops.LRN: _lrn,
    ops.Dropout: lambda op, texts: f"nn.Dropout({texts['p']})",
    ops.FC: lambda op, texts: f"nn.Linear({texts['features_in']}, {texts['out']})",
    ops.Flatten: None,
    ops.Softmax: None,
    ops.Concat: None,
    ops.BatchNorm: _bn,
    ops.Act: None,  # F.relu(x) in forward(), as torchvision writes a ReLU without state
    ops.Sum: None,
}


def is_module(op: ops.OpT) -> bool:
    return MODULES[type(op)] is not None


def module_source(op: ops.OpT, texts: dict[str, str]) -> str:
    return MODULES[type(op)](op, texts)


def _square(pair: tuple[int, int]):
    return pair[0] if pair[0] == pair[1] else pair


class _Text(str):
    """Python source, printed as it is (a block parameter `s`, or a number)."""

    def __repr__(self) -> str:
        return str(self)


def _options(**pairs) -> str:
    """`, key=value` for each value that differs from its default."""
    return "".join(f", {k}={v!r}" for k, (v, default) in pairs.items() if v != default)
