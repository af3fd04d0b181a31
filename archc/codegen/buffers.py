"""The plan's concat buffers in one emitted class.

The plan (archc.backends.triton.plan) says which kernels write their output straight into a
channel slice of a concat's buffer. In the emitted forward() of one class this reads as

    buffer = K.ConcatBuffer(self.concat_widths)    # before the first branch that writes
    branch1x1, ... = K.conv1x1_siblings(x, [...], act='relu', out=buffer.part(0))
    ...
    x = buffer.join([branch1x1, branch3x3, branch5x5, branch_pool])

with `self.concat_widths = (n1, n3, n5, proj)` set in __init__ (a plain tuple, not state, so
the `state_dict` stays the torch backend's). A write is emitted only where the writer and the
concat are both layers of this class; every other branch is copied in by `join`.

Which GEMMs are written as one call with their epilogue is archc.codegen.rewrite's.
"""

from __future__ import annotations

from collections.abc import Callable

from archc import ops
from archc.codegen.names import fresh
from archc.ir.graph import Graph


class ConcatBuffers:
    def __init__(self, writes: dict[int, tuple[int, int]], graph: Graph, taken: set[str],
                 make: Callable[[str], str] | None = None):
        """`writes`: writer -> (concat, branch index), archc.codegen.rewrite's; `make`: the
        backend's call that makes a buffer, from its widths attribute."""
        self.graph = graph
        self.make = make
        self.taken = taken
        self.writes = writes
        self.names: dict[int, tuple[str, str]] = {}  # concat -> (variable, widths attribute)

    def open(self, writer: int) -> str | None:
        """The line that makes the buffer, if `writer` is the first to write into it."""
        if writer not in self.writes or self.writes[writer][0] in self.names:
            return None
        concat = self.writes[writer][0]
        names = (fresh("buffer", self.taken), fresh("concat_widths", self.taken))
        self.names[concat] = names
        return f"{names[0]} = {self.make(f'self.{names[1]}')}  # branches write their slices"

    def part(self, writer: int) -> str | None:
        """`buffer.part(i)`: where `writer`'s output goes, if it goes into a buffer."""
        if writer not in self.writes:
            return None
        concat, branch = self.writes[writer]
        return f"{self.names[concat][0]}.part({branch})"

    def buffer(self, concat: int) -> str | None:
        return self.names[concat][0] if concat in self.names else None

    def widths_line(self, concat: int, texts: list[str]) -> str | None:
        """`self.concat_widths = (n1, n3, n5, proj)` for __init__: each branch's channels."""
        if concat not in self.names:
            return None
        assert isinstance(self.graph.node(concat).op, ops.Concat)
        return f"self.{self.names[concat][1]} = ({', '.join(texts)}{',' * (len(texts) == 1)})"
