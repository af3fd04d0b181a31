"""Load: a path -> `Program` (the net of that file and every block it can see).

Reads the file, parses it, and follows `use "lib/x.arch"` imports (relative to the importing
file) depth first. A missing file, a cycle of uses and a block defined twice are errors at the
`use` or definition at fault. Only blocks are imported; the net comes from the named file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archc import ast
from archc.errors import ArchError, Note, Span, UsageError
from archc.parser import parse


@dataclass(frozen=True)
class Program:
    net: ast.NetDef
    blocks: dict[str, ast.BlockDef]


def load(path: str | Path, text: str | None = None) -> Program:
    """Load the file at `path` (or `text`, shown as coming from `path`)."""
    path = Path(path)
    if text is None:
        text = _read(path)
    file = parse(text, str(path))
    blocks: dict[str, ast.BlockDef] = {}
    _import_uses(file, path, blocks, stack=(path.resolve(),))
    _add_blocks(file.blocks, blocks)
    return Program(_the_net(file), blocks)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise UsageError(f"cannot read {path}: {reason}") from None


def _import_uses(file: ast.File, path: Path, blocks: dict, stack: tuple[Path, ...]) -> None:
    for use in file.uses:
        target = (path.parent / use.path).resolve()
        if target in stack:
            raise ArchError(f"cyclic use: '{use.path}' is already being loaded", use.span)
        try:
            text = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ArchError(f"cannot find '{use.path}' (looked in {path.parent or '.'})",
                            use.span) from None
        imported = parse(text, str(path.parent / use.path))
        _import_uses(imported, path.parent / use.path, blocks, stack + (target,))
        _add_blocks(imported.blocks, blocks)


def _add_blocks(new: tuple[ast.BlockDef, ...], blocks: dict[str, ast.BlockDef]) -> None:
    for block in new:
        first = blocks.get(block.name)
        if first is not None and first is not block:
            note = Note(_name_span(first), "first defined here")
            raise ArchError(f"block '{block.name}' is defined twice", _name_span(block),
                            (note,))
        blocks[block.name] = block


def _the_net(file: ast.File) -> ast.NetDef:
    if not file.nets:
        raise ArchError("no net in this file (a file of blocks is used from a net)",
                        Span.point(file.span.source, 1, 1))
    if len(file.nets) > 1:
        raise ArchError("a file holds one net", _name_span(file.nets[1]),
                        (Note(_name_span(file.nets[0]), "first net here"),))
    return file.nets[0]


def _name_span(definition: ast.BlockDef | ast.NetDef) -> Span:
    """The span of `block NAME` / `net NAME`: the first line of the definition."""
    s = definition.span
    line = s.source.line(s.line)
    return Span(s.source, s.line, s.col, s.line, max(s.col + 1, len(line.rstrip()) + 1))
