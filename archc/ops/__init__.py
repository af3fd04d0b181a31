"""The op registry: every op of the language, one `OpSpec` each, defined in its family's file.

A family file (conv.py, pool.py, norm.py, activation.py, linear.py, dropout.py, softmax.py,
join.py, channels.py, input.py) holds its ops' frozen dataclasses and, in one `OpSpec` per op,
everything about them: the statements that make them (signature and maker), shape and
receptive-field rules, cost rule, layout, bn folding, names for messages, tables and drawings,
the torch constructor and call, and what the triton plan makes of them (archc.ops.base says
each field). Every field is required, so an op cannot lack a part; the stages read `spec(op)`
and the tables below are views of the registry, not lists kept beside it. Adding an op is one
family file (or a spec in one) and its entry in `FAMILIES`; a Triton kernel adds its kernel
file and one plan rule.
"""

from __future__ import annotations

from archc.ops import (
    activation,
    channels,
    conv,
    dropout,
    input,
    join,
    linear,
    norm,
    pool,
    softmax,
)
from archc.ops.activation import ACTIVATION_LAYERS, ACTIVATIONS, Act
from archc.ops.args import BUILTIN_DEFAULTS, window_text
from archc.ops.base import Group, OpSpec, Signature, Statement
from archc.ops.binding import IDENTITY, REPETITION, bind, windows_given
from archc.ops.channels import Chunk, Shuffle
from archc.ops.conv import Conv
from archc.ops.dropout import Dropout, DropPath
from archc.ops.input import Input
from archc.ops.join import Concat, Mul, Sum
from archc.ops.linear import FC, Flatten
from archc.ops.norm import LRN, BatchNorm, LayerNorm, LayerScale
from archc.ops.pool import AdaptivePool, GlobalAvgPool, Pool
from archc.ops.softmax import Softmax

FAMILIES = (input, conv, pool, norm, activation, linear, dropout, softmax, join, channels)
REGISTRY: dict[type, OpSpec] = {s.type: s for family in FAMILIES for s in family.SPECS}
OP_TYPES = tuple(REGISTRY)
OpT = (Input | Conv | Pool | GlobalAvgPool | AdaptivePool | LRN | Dropout | DropPath | FC
       | Flatten | Softmax | Concat | BatchNorm | LayerNorm | LayerScale | Act | Sum | Mul
       | Chunk | Shuffle)

# The language's statements: name -> what it takes and how it is made.
STATEMENTS: dict[str, Statement] = {name: statement for s in REGISTRY.values()
                                    for name, statement in s.statements.items()}
SIGNATURES: dict[str, Signature] = {name: st.signature for name, st in STATEMENTS.items()}
# The groups that make a join: keyword -> how.
GROUPS: dict[str, Group] = {s.group.keyword: s.group for s in REGISTRY.values() if s.group}

__all__ = ["ACTIVATIONS", "ACTIVATION_LAYERS", "Act", "AdaptivePool", "BUILTIN_DEFAULTS",
           "BatchNorm", "Chunk", "Concat", "Conv", "DropPath", "Dropout", "FC", "Flatten",
           "GROUPS", "GlobalAvgPool", "Group", "IDENTITY", "Input", "LRN", "LayerNorm",
           "LayerScale", "Mul", "OP_TYPES", "OpSpec", "OpT", "Pool", "REGISTRY", "REPETITION",
           "SIGNATURES", "STATEMENTS", "Shuffle", "Signature", "Softmax", "Sum", "bind",
           "describe", "family", "full_text", "op_name", "spec", "window_text", "windows_given"]


def spec(op: OpT) -> OpSpec:
    """Everything about `op`'s type; a KeyError names a type that is not archc's."""
    return REGISTRY[type(op)]


def family(op_name: str) -> str:
    """The name `default` uses for a statement: `pool` for maxpool and avgpool."""
    return SIGNATURES[op_name].family or op_name


def op_name(op: OpT) -> str:
    """The language's name for an op: `conv`, `maxpool`, `gap`."""
    return spec(op).name(op)


def describe(op: OpT) -> str:
    """A short text for messages: `conv 1x1 64`, `maxpool 3x3/2`."""
    return spec(op).describe(op)


def full_text(op: OpT) -> str:
    """Everything the op does, as the language would write it: `conv 5x5/1 48 pad=2 relu`,
    `maxpool 3x3/2 ceil`; for drawings and the IR dump."""
    return describe(op) + spec(op).options(op)
