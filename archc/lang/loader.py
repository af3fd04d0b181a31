"""Load: a path -> `Program` (the net of that file and every block it can see).

Reads the file, parses it, and follows `use "lib/x.arch"` imports (relative to the importing
file) depth first. A file is loaded once however often it is used (two libraries may share a
third); only two different definitions of one block name are an error, shown at both with a
note at the `use` of the user's file that brought each in. A missing file and a cycle of uses
are errors at the `use`. Only blocks are imported; the net comes from the named file.

Only regular files of at most 16 MiB are read (checked before reading: a device, a FIFO or a
huge file would read without end), and a symbolic link loop is an error. Text is UTF-8; a
byte-order mark (Windows editors write one) is dropped; a byte that is not UTF-8, or a NUL, is
an error at its line and column, and a UTF-16 file is told so.
"""

from __future__ import annotations

import stat
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from archc import ops
from archc.errors import ArchError, Note, Source, Span, UsageError
from archc.lang import ast
from archc.lang.evaluate import IN_CHANNELS
from archc.lang.parser import parse
from archc.pynames import parameter_clash


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
    here = _resolved(path)
    loading = _Loading({here})
    for use in file.uses:
        _import(use, path, loading, (here,), use)
    _add_blocks(file.blocks, loading, None)
    names = {name for name, block in loading.blocks.items()  # those a use may give nothing
             if all(p.default is not None for p in block.params)} - set(ops.SIGNATURES)
    blocks = {name: bare_uses(block, names) for name, block in loading.blocks.items()}
    return Program(bare_uses(_the_net(file), names), blocks,
                   tuple(blocks[block.name] for block in file.blocks))


DEEPEST = 400  # AST levels walked, four a group: the build refuses nesting past 100 groups


def bare_uses(node, blocks: set[str], depth: int = 0):
    """`node` with each statement that is the name alone of a block whose parameters all have
    defaults (`se`, `u x2`) made the use `se()` it stands for, so such a block needs no
    parentheses. With words after it (`u 3`) it stays an op, and the build says that a block
    takes its arguments in parentheses. Past the nesting the build allows, left as it is
    (the build refuses it)."""
    if not blocks or depth > DEEPEST:
        return node
    if isinstance(node, ast.Op) and node.name in blocks and not node.args:
        return ast.BlockUse(node.name, (), node.span)
    if isinstance(node, tuple):
        new = tuple(bare_uses(item, blocks, depth + 1) for item in node)
        return new if any(a is not b for a, b in zip(new, node)) else node
    if is_dataclass(node) and not isinstance(node, type):
        changed = {f.name: new for f in fields(node) if (new := bare_uses(
            old := getattr(node, f.name), blocks, depth + 1)) is not old}
        return replace(node, **changed) if changed else node
    return node


BOM = "\ufeff"


MAX_SOURCE_BYTES = 16 * 2**20  # a net is kilobytes; more is a wrong file, refused unread


def read_source(path: Path, shown: Path | None = None) -> str:
    """The text of a file (errors name it `shown`); a usage error if it cannot be read.

    Only a regular file of at most MAX_SOURCE_BYTES is read: a device (/dev/zero), a FIFO or
    a huge file is refused before a byte of it is, so nothing reads without end."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"cannot read {path}: not a regular file")
        if info.st_size > MAX_SOURCE_BYTES:
            raise UsageError(f"cannot read {path}: {info.st_size:,} bytes, over the limit of "
                             f"{MAX_SOURCE_BYTES:,} for a source file")
        with path.open("rb") as file:
            data = file.read(MAX_SOURCE_BYTES + 1)  # it may have grown since stat
    except OSError as error:  # a symbolic link loop too (ELOOP)
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise UsageError(f"cannot read {path}: over the limit of {MAX_SOURCE_BYTES:,} bytes")
    if path.suffix != ".arch" and not _reads_as_arch(data):
        raise UsageError(f"cannot read {path}: not an .arch source (it begins "
                         f"{data[:FOREIGN_EXCERPT]!r}); archc reads .arch files")
    try:
        text = data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as error:
        raise _not_utf8(shown or path, data, error) from None
    if "\x00" in text:  # UTF-16 without its mark, or not a text file
        raise _bad_byte(shown or path, data, data.index(b"\x00"),
                        "(NUL): a source holds text (is it UTF-16, or not a text file?)")
    return text


FOREIGN_EXCERPT = 8  # bytes of a file that is no source shown in its error: enough to know
# it by (b'root:x:0', b'SHELL=/b'), too few to echo a password line or an environment


def _reads_as_arch(data: bytes) -> bool:
    """Whether a file not named .arch starts as a source does: UTF-8 text whose first word,
    past blank lines and comments, opens a statement of the top level. Else its lines are
    not echoed in errors (`use "/etc/passwd"`, `archc check /proc/self/environ`)."""
    try:
        text = data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError:
        return False
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            return "\x00" not in text and words[0].split("(")[0].split("{")[0] in \
                ("net", "block", "use")
    return "\x00" not in text  # blank: the parser says what is missing


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        raise UsageError(f"cannot read {path}: a symbolic link loop") from None


UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")  # the byte-order marks of UTF-16 (LE, BE)


def _not_utf8(path: Path, data: bytes, error: UnicodeDecodeError) -> ArchError:
    if data.startswith(UTF16_MARKS):
        # Windows editors save "Unicode" as UTF-16. Shown decoded, so the line under the
        # message reads as the user wrote it, not as a row of NUL bytes.
        text = data.decode("utf-16", "replace").removeprefix(BOM)
        return ArchError("the file is UTF-16, not UTF-8 (save the file as UTF-8)",
                         Span.point(Source(str(path), text), 1, 1))
    return _bad_byte(path, data, error.start, "is not UTF-8 (save the file as UTF-8)")


def _bad_byte(path: Path, data: bytes, at: int, what: str) -> ArchError:
    start = data.rfind(b"\n", 0, at) + 1
    line = data.count(b"\n", 0, at) + 1
    column = len(data[start:at].decode("utf-8", "replace")) + 1
    text = data.decode("utf-8", "replace").replace("\x00", " ")
    return ArchError(f"byte 0x{data[at]:02x} {what}",
                     Span.point(Source(str(path), text), line, column))


# The texts an editor holds, by resolved path (archc lsp): `use` reads a file from here
# before the disk, so a library being edited is seen as the editor has it.
EDITING: ContextVar[dict[Path, str] | None] = ContextVar("editing", default=None)


@contextmanager
def editing(texts: dict[Path, str]):
    """Within it, `use` reads the files of `texts` (path -> text) as given."""
    token = EDITING.set({Path(path).resolve(): text for path, text in texts.items()})
    try:
        yield
    finally:
        EDITING.reset(token)


def _import(use: ast.Use, path: Path, loading: _Loading, stack: tuple[Path, ...],
            top: ast.Use) -> None:
    """Load the file `use` names (from the file at `path`), and the files it uses, once."""
    shown = path.parent / use.path
    try:
        target = shown.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python < 3.13)
        raise ArchError(f"cannot use '{use.path}': a symbolic link loop", use.span) from None
    if target in stack:
        raise ArchError(f"cyclic use: '{use.path}' is already being loaded", use.span)
    if target in loading.loaded:
        return
    loading.loaded.add(target)
    text = (EDITING.get() or {}).get(target)
    if text is None and not target.exists():
        raise ArchError(f"cannot find '{use.path}' (looked in {path.parent})", use.span)
    try:
        text = read_source(target, shown) if text is None else text
    except UsageError as error:
        reason = str(error).split(": ", 1)[-1]
        raise ArchError(f"cannot use '{use.path}': {reason}", use.span) from None
    imported = parse(text, str(shown))
    for inner in imported.uses:
        _import(inner, shown, loading, stack + (target,), top)
    _add_blocks(imported.blocks, loading, top)


def _add_blocks(new: tuple[ast.BlockDef, ...], loading: _Loading, top: ast.Use | None) -> None:
    for block in new:
        _check_params(block)
        first = loading.blocks.get(block.name)
        if first is not None:
            notes = [Note(ast.first_line(first), "first defined here")]
            notes += _brought(top, "the second definition") + _brought(
                loading.brought_by[block.name], "the first")
            raise ArchError(f"block '{block.name}' is defined twice", ast.first_line(block),
                            tuple(notes))
        loading.blocks[block.name] = block
        loading.brought_by[block.name] = top


def _check_params(definition: ast.BlockDef | ast.NetDef) -> None:
    seen: dict[str, ast.Param] = {}
    for param in definition.params:
        if param.name == IN_CHANNELS:
            raise ArchError(f"'{IN_CHANNELS}' cannot be a parameter: in a block it is the "
                            "channel count of the block's input", param.span)
        clash = parameter_clash(param.name)
        if clash:
            raise ArchError(f"parameter '{param.name}' cannot be a keyword argument of the "
                            f"generated PyTorch class: {clash}; choose another name", param.span)
        if param.name in seen:
            raise ArchError(f"parameter '{param.name}' is named twice", param.span,
                            (Note(seen[param.name].span, "first named here"),))
        seen[param.name] = param


def _brought(use: ast.Use | None, what: str) -> list[Note]:
    return [] if use is None else [Note(use.span, f"{what} comes in through this use")]


def _the_net(file: ast.File) -> ast.NetDef:
    if not file.nets:
        raise ArchError("no net in this file (a file of blocks is used from a net)",
                        Span.point(file.span.source, 1, 1))
    if len(file.nets) > 1:
        raise ArchError("a file holds one net", ast.first_line(file.nets[1]),
                        (Note(ast.first_line(file.nets[0]), "first net here"),))
    _check_params(file.nets[0])
    return file.nets[0]

