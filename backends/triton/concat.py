"""Concat buffers: the output of a concat that the kernels making its branches write into.

At inference a `ConcatBuffer` is one NHWC output, allocated at its first write, and the
kernels that make a branch write their channel slice of it (`out=buffer.part(i)`); `join`
copies in only the branches that are not there yet. While autograd records, or under
`torch.compile`, `join` is `torch.cat` (writing into a shared buffer would hide the branches
from autograd; Inductor plans its own buffers). `in_place` says which of the two holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import torch

from .dispatch import in_place


class ConcatBuffer:
    """The output of one concat of branches `widths` channels wide, allocated at first write."""

    def __init__(self, widths: tuple[int, ...]):
        self.widths = tuple(widths)
        self.starts = (0, *accumulate(self.widths))
        self.buffer: torch.Tensor | None = None

    def part(self, branch: int) -> Part:
        return Part(self, branch)

    def slice(self, branch: int, like: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Branch `branch`'s channels of the buffer, an [N, width, h, w] channels-last view."""
        if self.buffer is None:
            self.buffer = torch.empty((like.shape[0], self.starts[-1], h, w), dtype=like.dtype,
                                      device=like.device, memory_format=torch.channels_last)
        return self.buffer[:, self.starts[branch]:self.starts[branch + 1]]

    def join(self, branches: list[torch.Tensor]) -> torch.Tensor:
        """The concat along channels: the buffer with the missing branches copied in."""
        if self.buffer is None or not in_place(*branches):
            return torch.cat(branches, dim=1)
        for i, branch in enumerate(branches):
            target = self.slice(i, branch, *branch.shape[2:])
            if branch.data_ptr() != target.data_ptr() or branch.stride() != target.stride():
                target.copy_(branch)
        return self.buffer


@dataclass(frozen=True)
class Part:
    """Where a branch goes: its slice of a `ConcatBuffer`, made once its size is known."""

    concat: ConcatBuffer
    branch: int

    def tensor(self, like: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.concat.slice(self.branch, like, h, w)

