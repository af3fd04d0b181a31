"""The PyTorch layer each op lowers to: its spec's `module` rule (in the op's family file),
None for the ops that are plain code in forward() (concat, flatten, softmax, activations,
the additions of a sum) or no layer at all (input).

A rule takes the op and `texts`, the constructor arguments that may be expressions in a
block's parameters, already printed as Python (archc.codegen.widths): "in" and "out"
channels, "features_in" (an fc's flattened input), and the op's `given` slots ("groups",
"stride", "p"). Everything else is the op's own number.
"""

from __future__ import annotations

from archc import ops


def is_module(op: ops.OpT) -> bool:
    return ops.spec(op).module is not None


def module_source(op: ops.OpT, texts: dict[str, str]) -> str:
    return ops.spec(op).module(op, texts)
