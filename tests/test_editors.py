"""Editor support (issue 38): the VS Code extension in editors/vscode, its TextMate grammar made
from the op registry and tested with vscode-tmgrammar-test (skipped without Node and the tool:
`make test` installs it best effort)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

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
