"""`archc lsp`: the language server over stdio (pygls), for any editor that speaks LSP.

On each open or change of a .arch file (debounced: a burst of keystrokes is analysed once),
the file is analysed as far as it builds (archc.pipeline.analyse_partial) and its errors and
`paper` warnings published, notes as related information. The last analysis that built
answers hovers (a statement's shape, params, MACs, receptive field and stride; a line of a
block at every use), inlay hints (`-> 256x28x28 · 164K params · 128M MACs`, when the client's
initializationOptions say `{"inlayHints": true}`), code lenses (the net's totals, each block's
share), go to definition (a block, through `use`d files; a label; a parameter), find
references and rename of blocks, labels and parameters (a block's in every file of the
workspace that uses it, archc.lsp.workspace; a label's rename says that it renames
state_dict keys), signature help in block uses, function calls and op statements, semantic
tokens (archc.lsp.names), document symbols, completion of ops, blocks and functions, and
formatting (archc fmt). A file with several syntax errors shows each (archc.lang.parser.
syntax_errors). `use` reads open files as the editor holds them, and an edit of a library
re-analyses the open nets that use it; a library is analysed through a net that uses it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from archc.errors import ArchError, Diagnostic
from archc.lsp.facts import Facts, Place
from archc.lsp.names import TOKEN_TYPES
from archc.lsp.workspace import Workspace

DEBOUNCE_S = 0.15


class ArchServer(LanguageServer):
    def __init__(self):
        super().__init__("archc", "0.1.0")
        self.facts: dict[str, Facts] = {}  # uri -> the last analysis that built
        self.pending: dict[str, asyncio.Task] = {}
        self.inlay_hints = False
        self.files = Workspace(None, self.open_texts)  # rooted at initialize

    def open_texts(self) -> dict[Path, str]:
        """The editor's text of each open file, by resolved path."""
        return {Path(path_of(uri)).resolve(): document.source
                for uri, document in self.workspace.text_documents.items()}


server = ArchServer()


def path_of(uri: str) -> str:
    return unquote(urlparse(uri).path)


def uri_of(path: str) -> str:
    return Path(path).resolve().as_uri()


def _range(place: Place) -> types.Range:
    return types.Range(types.Position(place.line, place.col),
                       types.Position(place.end_line, max(place.end_col, 0)))


def analyse(ls: ArchServer, uri: str) -> None:
    """Publish `uri`'s diagnostics and keep its facts. A library (blocks, no net) is analysed
    through a net that uses it: its blocks' errors are shown, never 'no net in this file'."""
    from archc.lang.loader import editing
    from archc.lang.parser import parse
    from archc.pipeline import analyse_partial

    document = ls.workspace.get_text_document(uri)
    path, host = path_of(uri), None
    try:
        host = None if parse(document.source, path).nets else ls.files.host(Path(path))
        if host is not None:  # a library that a net uses: analysed through the net
            ls.facts[uri] = Facts(host, path)
            diagnostics = host.diagnostics
        else:  # a net, or a file no net uses (`archc check` says it has no net)
            with editing(ls.open_texts()):
                analysis = analyse_partial(path, document.source)
            ls.facts[uri] = Facts(analysis, path)
            diagnostics = analysis.diagnostics
    except ArchError as error:
        from archc.lang.parser import syntax_errors

        several = syntax_errors(document.source, path)  # each bad line, where it is syntax
        diagnostics = [e.diagnostic() for e in several] if several else error.diagnostics()
    here = [d for d in diagnostics if d.span is None or _same(d.span.source.path, path)]
    elsewhere = [d for d in diagnostics if d.span and not _same(d.span.source.path, path)]
    if host is not None:
        elsewhere = []  # the host's other files' errors are theirs to show
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, diagnostics=[_diagnostic(d, path) for d in here] +
        [_elsewhere(d) for d in elsewhere], version=document.version))


def _dependents(ls: ArchServer, uri: str) -> list[str]:
    """The other open files whose last analysis read `uri` (a library they use)."""
    path = Path(path_of(uri)).resolve()
    return [other for other, facts in ls.facts.items() if other != uri and any(
        Path(b.span.source.path).resolve() == path for b in facts.a.program.blocks.values())]


def _same(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _diagnostic(d: Diagnostic, path: str) -> types.Diagnostic:
    place = Place.of(d.span) if d.span else Place(path, 0, 0, 0, 1)
    related = [types.DiagnosticRelatedInformation(
        types.Location(uri_of(n.span.source.path), _range(Place.of(n.span))), n.message)
        for n in d.notes if n.span is not None]
    severity = types.DiagnosticSeverity.Error if d.severity == "error" else \
        types.DiagnosticSeverity.Warning
    return types.Diagnostic(_range(place), d.message, severity=severity, source="archc",
                            related_information=related or None)


def _elsewhere(d: Diagnostic) -> types.Diagnostic:
    """An error in a `use`d file: shown at the top of this one, pointing there."""
    place = Place.of(d.span)
    return types.Diagnostic(
        types.Range(types.Position(0, 0), types.Position(0, 1)),
        f"{d.span.source.path}:{d.span.line}:{d.span.col}: {d.message}",
        severity=types.DiagnosticSeverity.Error if d.severity == "error" else
        types.DiagnosticSeverity.Warning, source="archc",
        related_information=[types.DiagnosticRelatedInformation(
            types.Location(uri_of(d.span.source.path), _range(place)), "here")])


def _later(ls: ArchServer, uri: str) -> None:
    """Analyse `uri` once the edits pause for DEBOUNCE_S."""
    async def run():
        await asyncio.sleep(DEBOUNCE_S)
        analyse(ls, uri)

    if uri in ls.pending:
        ls.pending[uri].cancel()
    ls.pending[uri] = asyncio.ensure_future(run())


@server.feature(types.INITIALIZE)
def initialize(ls: ArchServer, params: types.InitializeParams) -> None:
    options = params.initialization_options or {}
    ls.inlay_hints = bool(options.get("inlayHints", False))
    folders = params.workspace_folders or []
    root = folders[0].uri if folders else params.root_uri
    ls.files = Workspace(Path(path_of(root)) if root else None, ls.open_texts)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ArchServer, params: types.DidOpenTextDocumentParams) -> None:
    analyse(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ArchServer, params: types.DidChangeTextDocumentParams) -> None:
    for uri in [params.text_document.uri, *_dependents(ls, params.text_document.uri)]:
        _later(ls, uri)  # a library's edit changes the nets that use it


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: ArchServer, params: types.DidSaveTextDocumentParams) -> None:
    analyse(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: ArchServer, params: types.HoverParams) -> types.Hover | None:
    facts = ls.facts.get(params.text_document.uri)
    text = facts and facts.hover(params.position.line, params.position.character)
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text)) if text else None


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
def inlay_hints(ls: ArchServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    facts = ls.facts.get(params.text_document.uri)
    if not facts or not ls.inlay_hints:
        return []
    return [types.InlayHint(types.Position(line, col), "  " + text)
            for line, col, text in facts.inlay_hints()
            if params.range.start.line <= line <= params.range.end.line]


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
def code_lens(ls: ArchServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    facts = ls.facts.get(params.text_document.uri)
    if not facts:
        return []
    return [types.CodeLens(types.Range(types.Position(line, 0), types.Position(line, 0)),
                           types.Command(text, ""))
            for line, text in facts.lenses()]


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def definition(ls: ArchServer, params: types.DefinitionParams) -> types.Location | None:
    document = ls.workspace.get_text_document(params.text_document.uri)
    line, col = params.position.line, params.position.character
    text = document.lines[line] if line < len(document.lines) else ""
    used = _use_path(text, col)
    if used is not None:  # `use "lib/x.arch"`: the file
        target = Path(path_of(params.text_document.uri)).parent / used
        return types.Location(uri_of(str(target)), types.Range(types.Position(0, 0),
                                                               types.Position(0, 0)))
    facts = ls.facts.get(params.text_document.uri)
    place = facts and facts.definition(line, col, document.word_at_position(params.position))
    return types.Location(uri_of(place.path), _range(place)) if place else None


def _use_path(line: str, col: int) -> str | None:
    stripped = line.strip()
    if stripped.startswith("use") and '"' in stripped:
        start, end = line.index('"'), line.rindex('"')
        if start <= col <= end:
            return line[start + 1:end]
    return None


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def symbols(ls: ArchServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    facts = ls.facts.get(params.text_document.uri)
    kinds = {"net": types.SymbolKind.Class, "block": types.SymbolKind.Function,
             "label": types.SymbolKind.Field}
    return [types.DocumentSymbol(name, kinds[kind], _range(place), _range(place), detail=kind)
            for name, kind, place in (facts.symbols() if facts else [])]


@server.feature(types.TEXT_DOCUMENT_COMPLETION)
def completion(ls: ArchServer, params: types.CompletionParams) -> types.CompletionList:
    facts = ls.facts.get(params.text_document.uri)
    kinds = {"op": types.CompletionItemKind.Keyword, "block": types.CompletionItemKind.Function,
             "function": types.CompletionItemKind.Function}
    items = [types.CompletionItem(label, kind=kinds[kind], detail=detail)
             for label, kind, detail in (facts.completions() if facts else [])]
    return types.CompletionList(is_incomplete=False, items=items)


def _names(ls: ArchServer, uri: str):
    from archc.lsp.names import Names

    facts = ls.facts.get(uri)
    return Names(facts, ls.workspace.get_text_document(uri).source) if facts else None


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def references(ls: ArchServer, params: types.ReferenceParams) -> list[types.Location]:
    """Every place the block, label or parameter under the cursor is written: a label's and
    a parameter's in this file, a block's in every file of the workspace that uses it."""
    return [types.Location(uri=uri, range=_span(o))
            for uri, o in _written(ls, params.text_document.uri, params.position)[1]]


def _written(ls: ArchServer, uri: str, at: types.Position) -> tuple[str | None, list]:
    """What the word at `at` names and [(uri, Occurrence)] of each place it is written."""
    names = _names(ls, uri)
    if names is None:
        return None, []
    kind, found = names.references(at.line, at.character)
    if kind != "block":
        return kind, [(uri, o) for o in found]
    home = names.facts.a.program.blocks[found[0].word].span.source.path
    everywhere = ls.files.block_references(found[0].word, Path(home))
    return kind, [(uri_of(str(path)), o) for path, o in everywhere] or \
        [(uri, o) for o in found]


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: ArchServer, params: types.PrepareRenameParams):
    names = _names(ls, params.text_document.uri)
    kind, found = names.references(params.position.line, params.position.character) \
        if names else (None, [])
    here = [o for o in found if o.line == params.position.line and
            o.col <= params.position.character <= o.end]
    return _span(here[0]) if here else None


@server.feature(types.TEXT_DOCUMENT_RENAME)
def rename(ls: ArchServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    """The block, label or parameter renamed everywhere it is written (a block in every file
    that uses it). A label names the module that holds its layers: renaming it renames
    state_dict keys, and the edit says so (a change annotation the editor asks to confirm)."""
    from archc.lsp.names import valid_name

    why = valid_name(params.new_name)
    if why is not None:
        raise ValueError(why)  # pygls answers it as the request's error
    kind, found = _written(ls, params.text_document.uri, params.position)
    if not found:
        return None
    note = "state_dict" if kind == "label" else None
    by_file: dict[str, list] = {}
    for uri, o in found:
        by_file.setdefault(uri, []).append(
            types.AnnotatedTextEdit(range=_span(o), new_text=params.new_name,
                                    annotation_id=note) if note else
            types.TextEdit(range=_span(o), new_text=params.new_name))
    annotations = {"state_dict": types.ChangeAnnotation(
        label=f"renames the module {found[0][1].word!r}: its state_dict keys change",
        needs_confirmation=True,
        description="checkpoints saved before load through `archc weights --archc OLD.pt`")} \
        if note else None
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(
            uri=uri, version=_version(ls, uri)), edits=edits)
        for uri, edits in by_file.items()], change_annotations=annotations)


def _version(ls: ArchServer, uri: str) -> int | None:
    """An open document's version (the edit applies to that text), None for a file on disk."""
    document = ls.workspace.text_documents.get(uri)
    return document.version if document is not None else None


@server.feature(types.TEXT_DOCUMENT_SIGNATURE_HELP,
                types.SignatureHelpOptions(trigger_characters=["(", ","]))
def signature_help(ls: ArchServer, params: types.SignatureHelpParams):
    names = _names(ls, params.text_document.uri)
    found = names.signature(params.position.line, params.position.character) if names else None
    if found is None:
        return None
    label, parameters, active = found
    return types.SignatureHelp(
        signatures=[types.SignatureInformation(
            label=label, parameters=[types.ParameterInformation(label=p) for p in parameters])],
        active_signature=0, active_parameter=active if active >= 0 else None)


SEMANTIC_LEGEND = types.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=[])


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, SEMANTIC_LEGEND)
def semantic_tokens(ls: ArchServer, params: types.SemanticTokensParams) -> types.SemanticTokens:
    names = _names(ls, params.text_document.uri)
    data, last_line, last_col = [], 0, 0
    for line, col, length, kind in (names.tokens() if names else []):
        data += [line - last_line, col - last_col if line == last_line else col, length, kind, 0]
        last_line, last_col = line, col
    return types.SemanticTokens(data=data)


def _span(o) -> types.Range:
    return types.Range(start=types.Position(line=o.line, character=o.col),
                       end=types.Position(line=o.line, character=o.end))


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: ArchServer, params: types.DocumentFormattingParams) -> list[types.TextEdit]:
    from archc.lang.printer import format_text

    document = ls.workspace.get_text_document(params.text_document.uri)
    try:
        text = format_text(document.source, path_of(params.text_document.uri))
    except ArchError:
        return []  # the diagnostics say why; nothing is changed
    if text == document.source:
        return []
    end = types.Position(len(document.lines), 0)
    return [types.TextEdit(types.Range(types.Position(0, 0), end), text)]


def main() -> None:
    server.start_io()
