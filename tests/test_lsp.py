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
from pygls.lsp.client import LanguageClient  # noqa: E402

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


def _session(body):
    async def run():
        client = LanguageClient("archc-test", "1")
        published: dict[str, list] = {}
        arrived = asyncio.Event()

        @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def diagnostics(params):
            published[params.uri] = params.diagnostics
            arrived.set()

        await client.start_io(sys.executable, "-m", "archc", "lsp")
        await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=ROOT.as_uri(),
            initialization_options={"inlayHints": True}))
        client.initialized(types.InitializedParams())
        try:
            return await body(client, published, arrived)
        finally:
            await client.shutdown_async(None)
            client.exit(None)
            await client.stop()

    return asyncio.run(run())


def test_the_server_speaks_lsp_over_stdio(tmp_path):
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

    _session(body)


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
