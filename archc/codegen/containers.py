"""Containers: how one class declares its members, and the chains forward() calls at once.

A member of one layer is an attribute (`self.conv1 = nn.Conv2d(...)`); a member of several is
an nn.Sequential where forward() calls its layers as a chain and nothing else reads them
(`sequential`: `self.conv1(x)`, keys `conv1.0`, `conv1.1` as torchvision's `downsample.0`),
else an nn.ModuleDict of its layers by role where they are no chain and differ in kind
(archc.codegen.scopes.roles_of: `self.residual.conv1`), else an nn.ModuleList indexed in
layer order (`self.conv3[1]`). A head's member is declared where its statement stands
(`declare`), as torchvision's nets do.
"""

from __future__ import annotations

import re
from collections import Counter

from archc.codegen.drafts import Draft


def declare_members(draft: Draft, init: list[tuple], chains: set[str],
                    roles: dict[str, list[str]]) -> None:
    """__init__'s lines for `init`: (member, source, note) in order, a member of several
    layers as one container (nn.Sequential if it is one of `chains`, nn.ModuleDict keyed by
    its `roles`)."""
    rows = Counter(member for member, _, _ in init if member is not None)
    seen: Counter = Counter()
    for i, (member, source, note) in enumerate(init):
        if member is None:
            draft.add(f"        {source}", note)
        elif rows[member] == 1:
            draft.add(f"        self.{member} = {source}", note)
        else:
            opening, closing = ("nn.Sequential(", ")") if member in chains else \
                ("nn.ModuleDict({", "})") if member in roles else ("nn.ModuleList([", "])")
            if i == 0 or init[i - 1][0] != member:
                draft.add(f"        self.{member} = {opening}")
            key = f'"{roles[member][seen[member]]}": ' if member in roles else ""
            draft.add(f"            {key}{source},", note)
            seen[member] += 1
            if i + 1 == len(init) or init[i + 1][0] != member:
                draft.add(f"        {closing}")


CALL_OF_ONE = re.compile(r"        (\w+) = self\.(\w+)\[(\d+)\]\((\w+)\)$")


def sequential(forward: Draft, sizes: Counter) -> set[str]:
    """The members forward() calls as a chain, each layer on the one before and nothing else
    of them read (`x = self.layer1[0](x)`, `x = self.layer1[1](x)`, ...): they become
    nn.Sequential (the same state_dict keys) and forward() calls each once. Returns them."""
    lines = [CALL_OF_ONE.match(code) for code in forward.code]
    chains = set()
    for member, size in sizes.items():
        uses = [i for i, code in enumerate(forward.code) if f"self.{member}[" in code]
        if size < 2 or len(uses) != size or uses != list(range(uses[0], uses[0] + size)):
            continue
        calls = [lines[i] for i in uses]
        if all(c and c[2] == member and int(c[3]) == k and (k == 0 or c[4] == calls[0][1])
               and c[1] == calls[0][1] for k, c in enumerate(calls)):
            chains.add(member)
    for member in chains:
        uses = [i for i, code in enumerate(forward.code) if f"self.{member}[" in code]
        first, last = CALL_OF_ONE.match(forward.code[uses[0]]), uses[-1]
        forward.code[last] = f"        {first[1]} = self.{member}({first[4]})"
        for i in reversed(uses[:-1]):
            del forward.code[i], forward.notes[i]
    return chains


def declare(pending: list[tuple[int, tuple]], init: list, before: int) -> None:
    """Move the pending heads declared after a node before `before` into `init`."""
    for entry in [e for e in pending if e[0] < before]:
        init.append(entry[1])
        pending.remove(entry)
