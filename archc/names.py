"""Python names for emitted code: identifiers that user names cannot break, and local variables.

`safe` and `unique` keep a name from the .arch file (already an identifier: the grammar admits
nothing else) off Python keywords, builtins, nn.Module attributes, dunders and the names the
emitted code uses itself. `LocalNames` gives each value of a forward() a variable, reusing one
once the value it held is dead, so a chain of layers reads `x = ...(x)`.
"""

from __future__ import annotations

import builtins
import keyword

import torch

# Names the emitted code itself uses, or that would shadow something it relies on.
RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {
    "torch", "nn", "F", "self", "x", "aux", "heads", "init_weights", "loss_weights"}
MODULE_ATTRIBUTES = set(dir(torch.nn.Module))  # a layer must not overwrite `training` & co.


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Net"


def safe(name: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    if not name.isidentifier() or name.startswith("_"):  # a digit; dunders and private names
        name = "layer_" + name
    if name in RESERVED or name in MODULE_ATTRIBUTES or name.startswith("branch"):
        name += "_"
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

    def assign(self, position: int, value: int) -> str:
        """The variable item `position` stores `value` in: its input's if that dies here."""
        inputs = self.reads[position]
        if len(inputs) == 1 and self.last_read[inputs[0]] <= position:
            name = self.names[inputs[0]]
        elif self.last_read.get(self.holder["x"], -1) <= position:
            name = "x"
        else:
            self.count += 1
            name = f"branch{self.count}"
        self.names[value] = name
        self.holder[name] = value
        return name
