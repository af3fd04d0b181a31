"""Module boundaries the design fixes: the front end never imports torch or triton."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT

PROBE = """
import sys
from archc.cli.main import main
status = main({args!r})
heavy = sorted(m for m in ("torch", "triton", "numpy", "networkx", "tabulate")
               if m in sys.modules)
print("HEAVY", heavy, file=sys.stderr)
sys.exit(status)
"""


def run_probe(args):
    return subprocess.run([sys.executable, "-c", PROBE.format(args=args)], cwd=ROOT,
                          capture_output=True, text=True)


def test_stats_imports_neither_torch_nor_triton():
    """Nor networkx and tabulate: start-up time (bench/startup.py); --json draws no table."""
    result = run_probe(["stats", "nets/googlenet.arch", "--json"])
    assert result.returncode == 0
    assert "HEAVY []" in result.stderr


def test_check_imports_neither_torch_nor_triton():
    result = run_probe(["check", "nets/vgg_e.arch", "nets/nin_cifar10.arch"])
    assert result.returncode == 0
    assert "HEAVY []" in result.stderr


def test_diff_imports_neither_torch_nor_triton():
    result = run_probe(["diff", "nets/vgg_a.arch", "nets/vgg_e.arch", "--json"])
    assert result.returncode == 1, result.stderr
    assert "HEAVY []" in result.stderr


def test_sweep_imports_neither_torch_nor_triton():
    result = run_probe(["sweep", "nets/mnasnet1_0.arch", "--set", "alpha=0.5:1.0:0.5", "--json"])
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr.replace("'tabulate', ", "")


def test_the_language_server_imports_neither_torch_nor_triton():
    probe = ("import sys, archc.lsp.server\n"
             "from archc.lsp.facts import Facts\n"
             "from archc.pipeline import analyse_partial\n"
             "Facts(analyse_partial('nets/googlenet.arch'), 'nets/googlenet.arch').hover(17, 8)\n"
             "print(sorted(m for m in ('torch', 'triton') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_fmt_imports_neither_torch_nor_triton():
    result = run_probe(["fmt", "--check", "nets/vgg_e.arch", "nets/lib/resnet.arch"])
    assert result.returncode == 0, result.stdout
    assert "HEAVY []" in result.stderr


def test_compile_to_a_file_imports_no_torch(tmp_path):
    result = run_probe(["compile", "nets/googlenet.arch", "-o", str(tmp_path / "g.py")])
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr
    assert (tmp_path / "g.py").read_text().count("class ") == 3


def test_lark_and_networkx_stay_in_their_modules():
    sources = {str(p.relative_to(ROOT / "archc")): p.read_text()
               for p in sorted((ROOT / "archc").rglob("*.py"))
               if p.parts[-2] not in ("train", "backends")}  # the runner and the kernels: torch
    assert len(sources) > 30
    assert [n for n, s in sources.items() if "import lark" in s or "from lark" in s] == \
        ["lang/parser.py"]
    # archc's graph is ir/graph.py's; the importer's dominators are over torch.fx's graph
    assert [n for n, s in sources.items() if "networkx" in s.split('"""', 2)[-1]] == \
        ["importer/layout.py", "ir/graph.py"]
    torch_users = sorted(n for n, s in sources.items() if "\nimport torch" in s)
    assert torch_users == ["codegen/export.py", "codegen/freeze.py", "codegen/lower.py",
                           "codegen/weights.py", "importer/trace.py"]
    assert not [n for n, s in sources.items() if "import triton" in s]


def test_a_hostile_cache_file_runs_nothing(tmp_path):
    """Issue 14: the LALR tables were a Lark pickle in $XDG_CACHE_HOME/archc, and a crafted one
    ran code at start-up. Plant one under every name the old cache used, and one Lark would
    read, and check that archc starts, checks, and runs none of it."""
    import hashlib
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    cache = tmp_path / "cache" / "archc"
    cache.mkdir(parents=True)
    grammar = (ROOT / "grammars/arch.lark").read_text()
    for digest in (hashlib.sha256(grammar.encode()).hexdigest()[:16], "0" * 16):
        (cache / f"arch-{digest}.lark-cache").write_bytes(pickle.dumps(Payload()))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    for home_cache in (tmp_path / ".cache" / "archc",):
        home_cache.mkdir(parents=True)
        for path in cache.iterdir():
            (home_cache / path.name).write_bytes(path.read_bytes())
    result = subprocess.run([sys.executable, "-m", "archc.cli.main", "check", "nets/vgg_a.arch"],
                            cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0 and result.stdout == "1 file checked, no errors\n"
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and
                  "lark" in p.name) == sorted(2 * [p.name for p in cache.iterdir()])


def test_the_shipped_parser_tables_are_the_grammars():
    """grammars/arch_tables.json is made from grammars/arch.lark by `python -m
    archc.lang.parser`; edit the grammar without making it again and this fails (the parser
    still works, slower)."""
    import json

    from archc.lang import parser

    grammar = (ROOT / "grammars/arch.lark").read_text()
    tables = json.loads((ROOT / "grammars/arch_tables.json").read_text())
    assert tables["grammar_sha256"] == parser.grammar_hash(grammar), \
        "run `python -m archc.lang.parser` to remake grammars/arch_tables.json"
    shipped, built = parser._lark(), parser.build_lark(grammar)
    assert shipped.source_path == "<deserialized>"  # from the shipped tables, not rebuilt
    # Lark numbers its states differently on each build, so compare what they parse: every
    # net and every broken program, trees or the error's place.
    for path in sorted([*ROOT.glob("nets/**/*.arch"), *ROOT.glob("tests/errors/**/*.arch")]):
        text = path.read_text(errors="replace") + "\n"
        assert _parsed(shipped, text) == _parsed(built, text), path
    source = (ROOT / "archc/lang/parser.py").read_text()
    assert "import pickle" not in source and "cache=" not in source and "Lark.load(" not in source


def _parsed(lark, text: str):
    from lark.exceptions import UnexpectedInput

    try:
        return lark.parse(text)
    except UnexpectedInput as error:
        return (type(error).__name__, error.line, error.column)


# Each backend's compile-time half: what `archc compile` reads without torch (issue 36).
COMPILE_TIME = {"backend.py", "fusion.py", "registry.py", "plan.py", "calls.py", "__init__.py"}


def test_a_backends_compile_time_half_imports_no_torch_and_its_run_time_no_archc():
    files = {p.relative_to(ROOT / "backends"): p.read_text()
             for p in (ROOT / "backends").rglob("*.py")}
    assert {"triton/conv1x1.py", "triton/plan.py", "cpu/runtime.py", "cpu/plan.py"} <= \
        {str(f) for f in files}
    compile_time = {f: s for f, s in files.items() if f.name in COMPILE_TIME}
    heavy = [f"{f}: {line}" for f, s in compile_time.items() for line in s.splitlines()
             if re.match(r"\s*(from|import) (torch|triton|numpy)\b", line)]
    assert heavy == []
    run_time = {f: s for f, s in files.items() if f.name not in COMPILE_TIME}
    others = [f"{f}: {line}" for f, s in run_time.items() for line in s.splitlines()
              if re.match(r"\s*(from|import) archc", line) and "archc.backends" not in line
              and "from archc.ops.activation import TABLE" not in line]  # the one table
    assert others == []
    rest = {str(p): p.read_text() for p in (ROOT / "archc").rglob("*.py")}
    assert not [n for n, s in rest.items() if "import triton" in s]


def test_emitting_for_every_backend_imports_no_torch():
    probe = ("import sys\n"
             "from archc.pipeline import analyse\n"
             "from archc.codegen.emit import emit\n"
             "from archc.backends.registry import BACKENDS\n"
             "a = analyse('nets/resnet50.arch')\n"
             "print([len(emit(a, backend=b).source) > 0 for b in BACKENDS.values()],\n"
             "      sorted(m for m in ('torch', 'triton') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[True, True, True] []"


def test_the_runners_command_lines_do_not_import_the_cli():
    """archc.cli.main imports archc.train.options; the reverse made a cycle (issue 16). Both take
    their shared pieces (--set, the extras check) from archc.cli.args."""
    options = (ROOT / "archc/train/options.py").read_text()
    assert "archc.cli.main" not in options and "from archc.cli.args import" in options


# The stages in order: a module may import its own stage's and lower stages' modules only
# (issue 36). lang and ops share a rank: the loader reads the registry, the ops the AST.
# A backend's plan and call rows read the analysis, and the emitter reads them: rank 4 too.
STAGES = {"lang": 1, "ops": 1, "ir": 2, "analysis": 3, "report": 4, "codegen": 4,
          "backends": 4, "lsp": 5, "cli": 6, "train": 6}


def _module_imports() -> dict[str, set[str]]:
    """archc's modules (backends/ and grammars/ as archc.backends, archc.grammars) -> the
    archc modules each imports, at its top or inside a function."""
    import ast

    files = {**{_module_name(p): p for p in (ROOT / "archc").rglob("*.py")},
             **{_module_name(p): p for p in (ROOT / "backends").rglob("*.py")}}
    imports: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts) + (f".{base}" if base else "")
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in files]
                found = subs if len(subs) == len(node.names) else [base, *subs]
            else:
                continue
            imports.setdefault(name, set()).update(f for f in found if f in files and f != name)
    return imports


def _module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "backends":
        parts.insert(0, "archc")
    return ".".join(p for p in parts if p != "__init__")


def test_no_stage_imports_a_later_one():
    def stage(module: str) -> int | None:
        parts = module.split(".")
        return STAGES.get(parts[1]) if len(parts) > 2 or parts[-1] in STAGES else None

    upward = sorted((m, t) for m, targets in _module_imports().items() for t in targets
                    if stage(m) and stage(t) and stage(t) > stage(m))
    assert upward == []


def test_the_modules_import_no_circle():
    import networkx

    graph = networkx.DiGraph([(m, t) for m, ts in _module_imports().items() for t in ts])
    assert list(networkx.simple_cycles(graph)) == []
