"""`archc lsp` (issue 38): the language server, driven over stdio by pygls's client as an
editor drives it; and its facts (archc.lsp.facts) read directly off analyses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from archc.lsp.facts import Facts
from archc.pipeline import analyse_partial

pytest.importorskip("pygls")
from lsprotocol import types  # noqa: E402

GOOGLENET = ROOT / "nets/googlenet.arch"
BROKEN = """net n {
    input 3x8x8
    conv 3x3 8 pad=1 relu
    conv 3x3 (8 / 3)
    maxpool 2x2/2
    fc 10
}
"""


def test_a_statement_hovers_with_its_shape_and_counts():
    facts = Facts(analyse_partial(GOOGLENET), str(GOOGLENET))
    text = facts.hover(17, 8)  # `3a: inception(64, 96, 128, 16, 32, 32)`
    assert text.startswith("**3a** (inception(n1=64, n3r=96, n3=128")
    assert "output 256x28x28 · 163,696 params · 128,049,152 MACs" in text
    assert "receptive field 59 · stride 8" in text


def test_a_line_of_a_block_hovers_with_its_shape_at_every_use():
    facts = Facts(analyse_partial(GOOGLENET), str(ROOT / "nets/lib/inception.arch"))
    text = facts.hover(8, 26)  # `{ conv 1x1 n5r; conv 5x5 n5 }`: its 5x5 conv
    assert text.startswith("**conv 5x5 n5**")
    assert "used 9x: 3a 32x28x28, 3b 96x28x28, 4a 48x14x14, 4b 64x14x14" in text


def test_a_broken_statement_leaves_the_others_their_shapes():
    analysis = analyse_partial("n.arch", BROKEN)
    assert [d.message.split(",")[0] for d in analysis.errors] == ["channels must be an integer"]
    facts = Facts(analysis, "n.arch")
    assert [text for _, _, text in facts.inlay_hints()] == [
        "-> 8x8x8 · 224 params · 13.8K MACs", "-> 8x4x4", "-> 10x1x1 · 1.29K params · 1.28K MACs"]


def test_inlay_hints_are_the_stats_rows():
    """Each hint after a statement of the net is `archc stats --json`'s row for it: its
    output shape and its params and MACs (shortened), in order, the heads' after."""
    from archc.lsp.facts import short

    facts = Facts(analyse_partial(GOOGLENET), str(GOOGLENET))
    stats = json.loads(subprocess.run([sys.executable, "-m", "archc", "stats", str(GOOGLENET),
                                       "--json"], capture_output=True, text=True).stdout)
    expected = []
    for row in stats["rows"] + stats["heads"]:
        c, h, w = row["shape"]
        text = f"-> {c}x{h}x{w}"
        if row["params"] or row["macs"]:
            text += f" · {short(row['params'])} params · {short(row['macs'])} MACs"
        expected.append(text)
    assert [text for _, _, text in facts.inlay_hints()] == expected


def test_completion_offers_the_registrys_ops_the_blocks_in_scope_and_the_functions():
    from archc import ops
    from archc.lang.functions import FUNCTIONS

    facts = Facts(analyse_partial(GOOGLENET), str(GOOGLENET))
    offered: dict[str, set] = {}
    for label, kind, _ in facts.completions():
        offered.setdefault(kind, set()).add(label)
    assert offered == {"op": set(ops.SIGNATURES), "function": set(FUNCTIONS),
                       "block": set(facts.a.program.blocks)}
    assert "inception" in offered["block"]


def test_definitions_symbols_and_lenses():
    facts = Facts(analyse_partial(GOOGLENET), str(GOOGLENET))
    place = facts.definition(17, 8, "inception")
    assert place.path.endswith("nets/lib/inception.arch") and place.line == 4
    assert facts.definition(37, 30, "4a").line == 20  # `head aux1 from 4a`
    assert [(n, k) for n, k, _ in facts.symbols()][:4] == [
        ("googlenet", "net"), ("conv1", "label"), ("conv2", "label"), ("3a", "label")]
    assert facts.lenses()[0][1] == "6,998,552 params · 1,582,671,872 MACs · 23 rows"
    lib = Facts(analyse_partial(GOOGLENET), str(ROOT / "nets/lib/inception.arch"))
    stats = json.loads(subprocess.run([sys.executable, "-m", "archc", "stats", str(GOOGLENET),
                                       "--json"], capture_output=True, text=True).stdout)
    inceptions = [r for r in stats["rows"] if r["type"].startswith("inception")]
    share = sum(r["macs"] for r in inceptions) / (stats["training_total"]["macs"])
    params = sum(r["params"] for r in inceptions)
    assert lib.lenses()[0] == (4, f"used 9 times · {share:.1%} of MACs · {params:,} params")


CLIENTS = ["visual-studio-code", "neovim"]  # pytest-lsp's recorded client capabilities


class _Arrivals:
    """The next diagnostics the server publishes: `wait()` for them, `clear()` to wait for
    the ones after."""

    def __init__(self, client):
        self.client = client
        self.clear()

    def clear(self) -> None:
        self.future = asyncio.wrap_future(self.client.protocol.wait_for_notification(
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS))

    async def wait(self) -> None:
        await self.future


def _session(body, client_spec: str = "visual-studio-code", root=ROOT):
    """Run `body(client, published, arrived)` against `archc lsp` over stdio, the client
    pytest-lsp's, initialised with the capabilities an editor sends (its recording of VS
    Code's or Neovim's); a reply that breaks the protocol for that client fails the test."""
    import warnings

    from pytest_lsp import LspSpecificationWarning, client_capabilities, make_test_lsp_client

    async def run():
        client = make_test_lsp_client()
        await client.start_io(sys.executable, "-m", "archc", "lsp")
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities(client_spec), root_uri=root.as_uri(),
            initialization_options={"inlayHints": True}))
        try:
            return await body(client, client.diagnostics, _Arrivals(client))
        finally:
            await client.shutdown_session()
            await client.stop()

    with warnings.catch_warnings():
        warnings.simplefilter("error", LspSpecificationWarning)
        return asyncio.run(run())


@pytest.mark.parametrize("client_spec", CLIENTS)
def test_the_server_speaks_lsp_over_stdio(tmp_path, client_spec):
    path = tmp_path / "n.arch"
    path.write_text(BROKEN)
    uri = path.as_uri()

    async def body(client, published, arrived):
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri, "arch", 1, BROKEN)))
        await asyncio.wait_for(arrived.wait(), 30)
        (error,) = published[uri]
        assert error.message.startswith("channels must be an integer")
        assert (error.range.start.line, error.range.start.character) == (3, 14)
        hover = await client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(uri), types.Position(2, 6)))
        assert "output 8x8x8 · 224 params" in hover.contents.value
        hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
            types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0),
                                                           types.Position(9, 0))))
        assert [h.label.strip() for h in hints][0] == "-> 8x8x8 · 224 params · 13.8K MACs"
        fixed = BROKEN.replace("(8 / 3)", "(8 / 2)")
        arrived.clear()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=uri),
            [types.TextDocumentContentChangeWholeDocument(fixed)]))
        await asyncio.wait_for(arrived.wait(), 30)
        assert list(published[uri]) == []  # fixed: no error left
        messy = fixed.replace("conv 3x3 8 pad=1 relu", "conv  3x3 8   pad=1 relu")
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=3, uri=uri),
            [types.TextDocumentContentChangeWholeDocument(messy)]))
        edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
            types.TextDocumentIdentifier(uri), types.FormattingOptions(4, True)))
        assert [edit.new_text for edit in edits] == [fixed]  # archc fmt's layout
        symbols = await client.text_document_document_symbol_async(
            types.DocumentSymbolParams(types.TextDocumentIdentifier(uri)))
        assert [s.name for s in symbols] == ["n"]
        completion = await client.text_document_completion_async(types.CompletionParams(
            types.TextDocumentIdentifier(uri), types.Position(3, 4)))
        labels = {item.label for item in completion.items}
        assert {"conv", "maxpool", "divisible", "concat"} & labels >= {"conv", "divisible"}

    _session(body, client_spec)


def test_definition_through_a_use_over_stdio():
    uri = GOOGLENET.as_uri()
    text = GOOGLENET.read_text()

    async def body(client, published, arrived):
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri, "arch", 1, text)))
        await asyncio.wait_for(arrived.wait(), 30)
        assert all(d.severity == types.DiagnosticSeverity.Warning for d in published[uri])
        assert len(published[uri]) == 9  # Table 1's printed values that differ
        found = await client.text_document_definition_async(types.DefinitionParams(
            types.TextDocumentIdentifier(uri), types.Position(17, 8)))
        assert found.uri.endswith("nets/lib/inception.arch") and found.range.start.line == 4
        found = await client.text_document_definition_async(types.DefinitionParams(
            types.TextDocumentIdentifier(uri), types.Position(4, 8)))
        assert found.uri.endswith("nets/lib/inception.arch")
        lenses = await client.text_document_code_lens_async(types.CodeLensParams(
            types.TextDocumentIdentifier(uri)))
        assert lenses[0].command.title.startswith("6,998,552 params")

    _session(body)


def _checked(paths: list) -> dict[str, list[tuple]]:
    """`archc check --json FILE`'s diagnostics for each file, as the server shows them in
    that file: (line, column, severity, message, notes), 0-based as LSP counts; one in a file
    it uses at the top of this one, its place in the message."""
    import contextlib
    import io

    from archc.cli.main import main

    found: dict[str, list[tuple]] = {}
    for path in (str(ROOT / p) for p in paths):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["check", "--json", path])
        found[path] = []
        for d in json.loads(out.getvalue()):
            notes = tuple((n["line"] - 1, n["column"] - 1, n["message"]) for n in d["notes"])
            if d["file"] == path:
                found[path].append((d["line"] - 1, d["column"] - 1, d["severity"],
                                    d["message"], notes))
            else:
                found[path].append((0, 0, d["severity"], f"{d['file']}:{d['line']}:"
                                    f"{d['column']}: {d['message']}",
                                    ((d["line"] - 1, d["column"] - 1, "here"),)))
    return found


def _text(path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


@pytest.mark.parametrize("client_spec, nets", [
    *((spec, ("googlenet", "resnet50", "mobilenet_v3_large", "vgg_a")) for spec in CLIENTS),
    pytest.param("visual-studio-code", None, marks=pytest.mark.slow)])  # None: every net
def test_the_servers_diagnostics_are_archc_checks(client_spec, nets):
    """Every file of tests/errors and shipped nets (four by default, all under -m slow),
    opened in the editor: what the server publishes is what `archc check --json` says (one
    source of truth): place, severity, message and notes (each a related location)."""
    paths = sorted(p.relative_to(ROOT) for p in (ROOT / "tests/errors").glob("*.arch")
                   if _text(p) is not None)  # an editor sends text: not the bytes that are none
    paths += [p.relative_to(ROOT) for p in (ROOT / "nets").glob("*.arch")
              if nets is None or p.stem in nets]
    expected = _checked(paths)
    severities = {types.DiagnosticSeverity.Error: "error",
                  types.DiagnosticSeverity.Warning: "warning"}

    async def body(client, published, arrived):
        for path in paths:
            client.text_document_did_open(types.DidOpenTextDocumentParams(
                types.TextDocumentItem((ROOT / path).as_uri(), "arch", 1,
                                       (ROOT / path).read_text())))
        uris = {(ROOT / p).as_uri(): str(ROOT / p) for p in paths}
        for _ in range(600):
            if set(uris) <= set(published):
                break
            await asyncio.sleep(0.05)
        return {uris[uri]: [(d.range.start.line, d.range.start.character, severities[d.severity],
                             d.message, tuple((r.location.range.start.line,
                                               r.location.range.start.character, r.message)
                                              for r in d.related_information or ()))
                            for d in diagnostics]
                for uri, diagnostics in published.items() if uri in uris}

    shown = _session(body, client_spec)
    assert shown == expected
    assert all(shown[str(ROOT / p)] for p in paths if p.parts[1] == "errors")  # each its error


def _names(path, text=None):
    from archc.lsp.names import Names

    text = text if text is not None else path.read_text()
    return Names(Facts(analyse_partial(path, text), str(path)), text)


def test_references_of_a_block_a_label_and_a_parameter():
    names = _names(GOOGLENET)
    kind, found = names.references(18, 10)  # `3b: inception(...)`
    assert kind == "block" and len(found) == 9 and {o.word for o in found} == {"inception"}
    kind, found = names.references(20, 4)  # `4a:` and `head aux1 from 4a`
    assert kind == "label" and [(o.line, o.col) for o in found] == [(20, 4), (36, 19)]
    kind, found = names.references(6, 16)  # the net's `classes`, declared and used
    assert kind == "parameter" and [o.line for o in found] == [6, 30, 36, 37]
    from archc.lsp.names import Names

    lib = ROOT / "nets/lib/efficientnet.arch"  # as the net that uses it analyses it
    names = Names(Facts(analyse_partial(ROOT / "nets/efficientnet_b0.arch"), str(lib)),
                  lib.read_text())
    kind, found = names.references(16, 20)  # mbconv_dw's k: (k)x(k) in its body
    assert kind == "parameter" and [(o.line, o.col) for o in found] == [(16, 20), (17, 10),
                                                                       (17, 14)]
    assert _names(GOOGLENET).references(16, 2) == (None, [])  # a blank: nothing


def test_signature_help_and_semantic_tokens():
    from archc.lsp.names import TOKEN_TYPES

    names = _names(GOOGLENET)
    label, params, active = names.signature(17, 30)  # inside inception(64, 96, 128, |...
    assert label == "inception(n1, n3r, n3, n5r, n5, proj)" and active == 3
    label, params, active = names.signature(11, 20)  # `conv1: conv 7x7/2 64`
    assert label.startswith("conv window channels") and params[:2] == ["window", "channels"]
    lines = GOOGLENET.read_text().splitlines()
    tokens = {(lines[line][col:col + length], TOKEN_TYPES[kind])
              for line, col, length, kind in names.tokens()}
    assert {("net", "keyword"), ("inception", "class"), ("classes", "parameter"),
            ("4a", "property"), ("conv", "function"), ("relu", "enumMember"),
            ("3x224x224", "number"), ('"lib/inception.arch"', "string")} <= tokens


def test_rename_validates_the_new_name():
    from archc.lsp.names import valid_name

    assert valid_name("stem") is None
    assert "not a name" in valid_name("3x")
    assert "a word of the language" in valid_name("conv")


def test_each_bad_line_is_its_own_syntax_error():
    from archc.lang.parser import syntax_errors

    text = (ROOT / "nets/vgg_a.arch").read_text().replace(
        "conv 3x3 128;", "conv 3x3 128 ];").replace("conv 3x3 256 x2;", "conv 3x3 256 x2 @;")
    found = [(e.span.line, e.span.col, e.message) for e in syntax_errors(text, "v.arch")]
    assert found == [(10, 18, "unexpected character ']'"), (11, 21, "unexpected character '@'")]
    assert syntax_errors((ROOT / "nets/vgg_a.arch").read_text(), "v.arch") == []


def test_references_rename_and_tokens_over_stdio(tmp_path):
    path = tmp_path / "n.arch"
    text = ("block unit(c) { conv 3x3 c pad=1 relu }\n"
            "net n(width = 8) {\n    input 3x8x8\n    stem: unit(width)\n"
            "    unit(width * 2)\n    head side from stem weight 0.3 { gap; fc 2 }\n"
            "    gap\n    fc 10\n}\n")
    path.write_text(text)
    uri = path.as_uri()

    async def body(client, published, arrived):
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri, "arch", 1, text)))
        await asyncio.wait_for(arrived.wait(), 30)
        where = types.TextDocumentIdentifier(uri)
        refs = await asyncio.wait_for(client.text_document_references_async(
            types.ReferenceParams(context=types.ReferenceContext(include_declaration=True),
                                  text_document=where, position=types.Position(4, 6))), 30)
        assert [(r.range.start.line, r.range.start.character) for r in refs] == \
            [(0, 6), (3, 10), (4, 4)]
        edit = await asyncio.wait_for(client.text_document_rename_async(types.RenameParams(
            text_document=where, position=types.Position(3, 5), new_name="trunk")), 30)
        (change,) = edit.document_changes
        assert [(e.range.start.line, e.new_text, e.annotation_id) for e in change.edits] == \
            [(3, "trunk", "state_dict"), (5, "trunk", "state_dict")]
        assert edit.change_annotations["state_dict"].needs_confirmation
        edit = await asyncio.wait_for(client.text_document_rename_async(types.RenameParams(
            text_document=where, position=types.Position(1, 7), new_name="w")), 30)
        assert [(e.range.start.line, e.range.start.character) for e in
                edit.document_changes[0].edits] == [(1, 6), (3, 15), (4, 9)]
        help = await asyncio.wait_for(client.text_document_signature_help_async(
            types.SignatureHelpParams(text_document=where, position=types.Position(4, 13))), 30)
        assert help.signatures[0].label == "unit(c)" and help.active_parameter == 0
        tokens = await asyncio.wait_for(client.text_document_semantic_tokens_full_async(
            types.SemanticTokensParams(text_document=where)), 30)
        assert list(tokens.data[:5]) == [0, 0, 5, 0, 0]  # `block`, a keyword, at 0:0
        broken = text.replace("stem: unit(width)", "stem: unit(width) ]").replace(
            "    gap\n", "    gap @\n")
        arrived.clear()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=uri),
            [types.TextDocumentContentChangeWholeDocument(broken)]))
        await asyncio.wait_for(arrived.wait(), 30)
        assert [d.range.start.line for d in published[uri]] == [3, 6]  # both bad lines

    _session(body)


def test_a_library_its_nets_and_a_blocks_references_across_files(tmp_path):
    """A workspace of a library and two nets that use it, only the library open at first:
    the library shows its own errors, not 'no net'; its block's references and rename reach
    both nets (the one not open edited on disk, no version); an unsaved edit of the library
    is what the open net is checked against."""
    (tmp_path / "lib.arch").write_text("block unit(c) { conv 3x3 c pad=1 relu }\n")
    for name, width in (("a", 8), ("b", 16)):
        (tmp_path / f"{name}.arch").write_text(
            f'use "lib.arch"\nnet {name} {{\n    input 3x8x8\n    unit({width})\n'
            f"    unit({width}) x2\n    gap\n    fc 2\n}}\n")
    lib, a = (tmp_path / "lib.arch").as_uri(), (tmp_path / "a.arch").as_uri()

    async def body(client, published, arrived):
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(lib, "arch", 1, (tmp_path / "lib.arch").read_text())))
        await asyncio.wait_for(arrived.wait(), 30)
        assert list(published[lib]) == []  # a library a net uses: no 'no net' error
        hover = await client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(lib), types.Position(0, 18)))
        assert "used 2x: unit1 8x8x8" in hover.contents.value  # as net a (on disk) uses it
        refs = await client.text_document_references_async(types.ReferenceParams(
            context=types.ReferenceContext(include_declaration=True),
            text_document=types.TextDocumentIdentifier(lib), position=types.Position(0, 7)))
        assert sorted((r.uri.rsplit("/", 1)[1], r.range.start.line) for r in refs) == [
            ("a.arch", 3), ("a.arch", 4), ("b.arch", 3), ("b.arch", 4), ("lib.arch", 0)]
        edit = await client.text_document_rename_async(types.RenameParams(
            text_document=types.TextDocumentIdentifier(lib), position=types.Position(0, 7),
            new_name="cell"))
        assert {(c.text_document.uri.rsplit("/", 1)[1], c.text_document.version, len(c.edits))
                for c in edit.document_changes} == {("lib.arch", 1, 1), ("a.arch", None, 2),
                                                    ("b.arch", None, 2)}
        arrived.clear()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(a, "arch", 1, (tmp_path / "a.arch").read_text())))
        await asyncio.wait_for(arrived.wait(), 30)
        assert list(published[a]) == []
        arrived.clear()
        client.text_document_did_change(types.DidChangeTextDocumentParams(  # not saved
            types.VersionedTextDocumentIdentifier(version=2, uri=lib),
            [types.TextDocumentContentChangeWholeDocument(
                "block unit(c, d) { conv 3x3 c pad=1 relu; conv 1x1 d }\n")]))
        for _ in range(200):  # the library's and the net's diagnostics, in either order
            if published[a]:
                break
            await asyncio.sleep(0.05)
        assert [d.message for d in published[a]] == ["block 'unit' takes 2 arguments, got 1"] * 2

    _session(body, root=tmp_path)
