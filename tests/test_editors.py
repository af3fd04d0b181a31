"""Editor support (issue 38): the VS Code extension in editors/vscode, its TextMate grammar made
from the op registry and tested with vscode-tmgrammar-test (skipped without Node and the tool:
`make test` installs it best effort)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from archc import ops
from archc.lsp import textmate

VSCODE = ROOT / "editors/vscode"
TESTER = ROOT / "build/node-tools/node_modules/.bin/vscode-tmgrammar-test"  # make test installs it


def test_the_shipped_grammar_is_the_registrys():
    """Made by `python -m archc.lsp.textmate`: a new op without it made again fails here."""
    shipped = (VSCODE / "syntaxes/arch.tmLanguage.json").read_text()
    assert shipped == textmate.text(), "run `python -m archc.lsp.textmate`"
    patterns = json.loads(shipped)["patterns"]
    (found,) = [p["match"] for p in patterns if p.get("name") == "support.function.arch"]
    assert set(re.findall(r"\w+", found)) - {"b"} == set(ops.SIGNATURES)


def test_the_extension_starts_the_language_server_for_arch_files():
    package = json.loads((VSCODE / "package.json").read_text())
    (language,) = package["contributes"]["languages"]
    assert language["id"] == "arch" and language["extensions"] == [".arch"]
    (grammar,) = package["contributes"]["grammars"]
    assert (VSCODE / grammar["path"]).exists() and grammar["scopeName"] == "source.arch"
    assert (VSCODE / package["main"]).exists()
    client = (VSCODE / package["main"]).read_text()
    assert 'args: ["lsp"]' in client and "inlayHints" in client
    assert set(package["contributes"]["configuration"]["properties"]) == \
        {"archc.path", "archc.inlayHints"}


@pytest.mark.skipif(not shutil.which("node") or not TESTER.exists(),
                    reason="Node or vscode-tmgrammar-test not installed (make test installs it)")
def test_the_grammar_scopes_each_word_as_the_assertions_say():
    result = subprocess.run([str(TESTER), "-g", "syntaxes/arch.tmLanguage.json",
                             "test/words.arch"], cwd=VSCODE, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "words.arch" in result.stdout


@pytest.mark.skipif(shutil.which("nvim") is None, reason="Neovim is not installed")
def test_neovim_shows_the_servers_diagnostics_hover_and_definition(tmp_path):
    """A real editor: Debian's Neovim, headless, with editors/neovim/archc.lua, opens
    nets/googlenet.arch; what it holds is the server's: the paper's differing values as
    warnings, the inlay hints (virtual text before Neovim 0.10), a statement's hover, a
    block's definition in the library."""
    out = tmp_path / "session.json"
    settings = json.dumps([str(out), str(ROOT / "nets/googlenet.arch"), sys.executable,
                           str(ROOT)])
    subprocess.run(["nvim", "--headless", "-n", "-u", "NONE", "--cmd",
                    f"let g:archc_test = {settings}", "-c",
                    f"luafile {ROOT / 'tests/data/neovim_session.lua'}"],
                   cwd=ROOT, timeout=120, check=True, capture_output=True)
    found = json.loads(out.read_text())
    assert found["arrived"] is True
    assert len(found["diagnostics"]) == 9  # Table 1's printed values that differ
    assert {d["severity"] for d in found["diagnostics"]} == {2}  # warnings
    assert "output 256x28x28" in found["hover"]["contents"]["value"]
    hints = {h["line"]: h["text"].strip() for h in found["hints"]}
    assert hints[17].startswith("-> 256x28x28 · 164K params · 128M MACs")  # 3a's line
    definition = found["definition"]
    definition = definition[0] if isinstance(definition, list) else definition
    assert definition["uri"].endswith("nets/lib/inception.arch")
    assert definition["range"]["start"]["line"] == 4
