"""Load: a path -> `Program` (the net of that file and every block it can see).

Reads the file, parses it, and follows `use "lib/x.arch"` imports (relative to the importing
file) depth first. A file is loaded once however often it is used (two libraries may share a
third); only two different definitions of one block name are an error, shown at both with a
note at the `use` of the user's file that brought each in. A missing file and a cycle of uses
are errors at the `use`. Only blocks are imported; the net comes from the named file.

Text is UTF-8; a byte-order mark (Windows editors write one) is dropped, and a byte that is not
UTF-8 is an error at its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archc import ast
from archc.errors import ArchError, Note, Source, Span, UsageError
from archc.parser import parse


@dataclass(frozen=True)
class Program:
    net: ast.NetDef
    blocks: dict[str, ast.BlockDef]
    local: tuple[ast.BlockDef, ...]  # the blocks defined in the net's own file


@dataclass
class _Loading:
    """What one `load` has seen: files by resolved path, and where each block came from."""

    loaded: set[Path] = field(default_factory=set)
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    brought_by: dict[str, ast.Use | None] = field(default_factory=dict)  # None: the user's file


def load(path: str | Path, text: str | None = None) -> Program:
    """Load the file at `path` (or `text`, shown as coming from `path`)."""
    path = Path(path)
    if text is None:
        text = read_source(path)
    file = parse(text.removeprefix(BOM), str(path))
    loading = _Loading({path.resolve()})
    for use in file.uses:
        _import(use, path, loading, (path.resolve(),), use)
    _add_blocks(file.blocks, loading, None)
    return Program(_the_net(file), loading.blocks, file.blocks)


BOM = "\ufeff"


def read_source(path: Path, shown: Path | None = None) -> str:
    """The text of a file (errors name it `shown`); a usage error if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    try:
        return data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as error:
        raise _not_utf8(shown or path, data, error) from None


def _not_utf8(path: Path, data: bytes, error: UnicodeDecodeError) -> ArchError:
    start = data.rfind(b"\n", 0, error.start) + 1
    line = data.count(b"\n", 0, error.start) + 1
    column = len(data[start:error.start].decode("utf-8", "replace")) + 1
    source = Source(str(path), data.decode("utf-8", "replace"))
    byte = data[error.start]
    return ArchError(f"byte 0x{byte:02x} is not UTF-8 (save the file as UTF-8)",
                     Span.point(source, line, column))


def _import(use: ast.Use, path: Path, loading: _Loading, stack: tuple[Path, ...],
            top: ast.Use) -> None:
    """Load the file `use` names (from the file at `path`), and the files it uses, once."""
    target = (path.parent / use.path).resolve()
    if target in stack:
        raise ArchError(f"cyclic use: '{use.path}' is already being loaded", use.span)
    if target in loading.loaded:
        return
    loading.loaded.add(target)
    shown = path.parent / use.path
    try:
        text = read_source(target, shown)
    except UsageError:
        raise ArchError(f"cannot find '{use.path}' (looked in {path.parent})", use.span) from None
    imported = parse(text, str(shown))
    for inner in imported.uses:
        _import(inner, shown, loading, stack + (target,), top)
    _add_blocks(imported.blocks, loading, top)


def _add_blocks(new: tuple[ast.BlockDef, ...], loading: _Loading, top: ast.Use | None) -> None:
    for block in new:
        first = loading.blocks.get(block.name)
        if first is not None:
            notes = [Note(ast.first_line(first), "first defined here")]
            notes += _brought(top, "the second definition") + _brought(
                loading.brought_by[block.name], "the first")
            raise ArchError(f"block '{block.name}' is defined twice", ast.first_line(block),
                            tuple(notes))
        loading.blocks[block.name] = block
        loading.brought_by[block.name] = top


def _brought(use: ast.Use | None, what: str) -> list[Note]:
    return [] if use is None else [Note(use.span, f"{what} comes in through this use")]


def _the_net(file: ast.File) -> ast.NetDef:
    if not file.nets:
        raise ArchError("no net in this file (a file of blocks is used from a net)",
                        Span.point(file.span.source, 1, 1))
    if len(file.nets) > 1:
        raise ArchError("a file holds one net", ast.first_line(file.nets[1]),
                        (Note(ast.first_line(file.nets[0]), "first net here"),))
    return file.nets[0]

