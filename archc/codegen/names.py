"""Python names for emitted code: identifiers that user names cannot break, and local variables.

`safe` and `unique` keep a name from the .arch file (already an identifier: the grammar admits
nothing else) off Python keywords, builtins, nn.Module attributes, dunders and the names the
emitted code uses itself. `LocalNames` gives each value of a forward() a variable, reusing one
once the value it held is dead, so a chain of layers reads `x = ...(x)`.

The names themselves (what is reserved, and `safe`) live in archc.pynames, which the loader
reads too: a parameter is a constructor keyword, so it is refused there rather than renamed.
"""

from __future__ import annotations

from archc.pynames import MODULE_ATTRIBUTES, RESERVED, safe

__all__ = ["MODULE_ATTRIBUTES", "RESERVED", "safe", "camel", "fresh", "unique", "LocalNames"]


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Net"


def fresh(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`... : the first that is free; then taken."""
    name, number = base, 1
    while name in taken or name in RESERVED:
        number += 1
        name = f"{base}_{number}"
    taken.add(name)
    return name


def unique(base: str, taken: set[str]) -> str:
    """`base`, or `base` with its trailing counter raised until it is free; then taken."""
    stem = base.rstrip("0123456789")
    number = int(base[len(stem):] or 0)
    name = base
    while name in taken or name in RESERVED:
        number += 1
        name = f"{stem}{number}"
    taken.add(name)
    return name


class LocalNames:
    """Variables for the values of one forward(): `reads[i]` are the values item i reads."""

    def __init__(self, reads: list[list[int]], scope_input: int, flat: dict[int, bool]):
        self.reads = reads
        self.flat = flat  # values that are N x C rather than N x C x H x W
        self.names = {scope_input: "x"}
        self.holder = {"x": scope_input}
        self.last_read = {value: i for i, values in enumerate(reads) for value in values}
        self.count = 0

    def read(self, value: int, dims: int) -> str:
        """The expression for `value` as a tensor of `dims` dimensions."""
        name = self.names[value]
        return f"{name}[:, :, None, None]" if dims == 4 and self.flat[value] else name

    def name_of(self, value: int) -> str:
        return self.names[value]

    def assign(self, position: int, value: int, hint: str | None = None) -> str:
        """The variable item `position` stores `value` in: its input's if that dies here, or
        `hint` (a branch's name) where the item starts that branch."""
        inputs = self.reads[position]
        if hint and hint not in (self.names[i] for i in inputs) and not self._live(hint, position):
            name = hint
        elif len(inputs) == 1 and self.last_read[inputs[0]] <= position:
            name = self.names[inputs[0]]
        elif self.last_read.get(self.holder["x"], -1) <= position:
            name = "x"
        else:
            name = self._spare(position)
        self.names[value] = name
        self.holder[name] = value
        return name

    def alias(self, value: int, of: int) -> None:
        """`value` is held in `of`'s variable (a layer left out)."""
        self.names[value] = self.names[of]

    def _spare(self, position: int) -> str:
        self.count += 1
        while self._live(f"branch{self.count}", position):
            self.count += 1
        return f"branch{self.count}"

    def _live(self, name: str, position: int) -> bool:
        """Whether `name` holds a value that is read after item `position`."""
        return name in self.holder and self.last_read.get(self.holder[name], -1) > position
