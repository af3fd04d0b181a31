"""The editor's workspace for `archc lsp`: the .arch files under its root, each as the editor
holds it where it is open, else as saved. Torch-free.

- `analysis(path)`: a file analysed as far as it builds, its `use`s read from the editor's
  texts first (archc.lang.loader.editing). A library has no net of its own: it is analysed
  through a net that uses it (`host`), an open one first, else one of the workspace's.
- `block_references(word, home)`: every place a file of the workspace writes the block
  `word` that `home` defines (its definition, its uses in the library and in every net that
  uses it), for find references and rename across files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from archc.errors import ArchError
from archc.lang.loader import editing
from archc.lsp.facts import Facts
from archc.lsp.names import Names, Occurrence

SKIPPED = {"node_modules", "build", "dist", "__pycache__", "site-packages"}  # and dot-folders
MAX_FILES = 5000  # a workspace of nets holds hundreds; past this, the rest is not searched


class Workspace:
    def __init__(self, root: Path | None, open_texts: Callable[[], dict[Path, str]]):
        self.root = root
        self.open_texts = open_texts  # resolved path -> the editor's text, for open files

    def files(self) -> list[Path]:
        """The open files, then every .arch file under the root (hidden and build folders
        left out)."""
        found = list(self.open_texts())
        if self.root is not None:
            for path in sorted(self.root.rglob("*.arch")):
                parts = path.relative_to(self.root).parts[:-1]
                if not any(p.startswith(".") or p in SKIPPED for p in parts):
                    found.append(path.resolve())
                if len(found) > MAX_FILES:
                    break
        return list(dict.fromkeys(found))

    def text(self, path: Path) -> str | None:
        path = path.resolve()
        held = self.open_texts().get(path)
        if held is not None:
            return held
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def analysis(self, path: Path):
        """`path`'s analysis as far as it builds; None where nothing does (or no net)."""
        from archc.pipeline import analyse_partial

        text = self.text(path)
        if text is None:
            return None
        try:
            with editing(self.open_texts()):
                return analyse_partial(path, text)
        except ArchError:
            return None

    def host(self, library: Path):
        """The analysis of a net that uses `library` (a file of blocks), or None."""
        library = library.resolve()
        name = library.name
        for path in self.files():
            text = self.text(path)
            if path == library or text is None or f"{name}\"" not in text:
                continue  # `use "lib/NAME.arch"`: only a file that names it can use it
            analysis = self.analysis(path)
            if analysis is not None and any(_defined_in(b, library) for b in
                                            analysis.program.blocks.values()):
                return analysis
        return None

    def block_references(self, word: str, home: Path) -> list[tuple[Path, Occurrence]]:
        """Every place the block `word` defined in `home` is written, in every file."""
        home = home.resolve()
        found: dict[tuple[Path, int, int], Occurrence] = {}
        for path in self.files():
            text = self.text(path)
            if text is None or word not in text:
                continue
            analysis = self.analysis(path)
            block = analysis.program.blocks.get(word) if analysis is not None else None
            if block is None or not _defined_in(block, home):
                continue
            sources = {Path(analysis.path).resolve()} | {
                Path(b.span.source.path).resolve() for b in analysis.program.blocks.values()}
            for source in sources:
                written = self.text(source)
                if written is None or word not in written:
                    continue
                names = Names(Facts(analysis, str(source)), written)
                for o in names.occurrences(word, "block"):
                    found[(source, o.line, o.col)] = o
        return [(path, o) for (path, _, _), o in sorted(found.items(),
                                                        key=lambda item: item[0])]


def _defined_in(block, path: Path) -> bool:
    return Path(block.span.source.path).resolve() == path
