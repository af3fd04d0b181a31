"""Module boundaries the design fixes: the front end never imports torch or triton."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

PROBE = """
import sys
from archc.cli import main
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


def test_compile_to_a_file_imports_no_torch(tmp_path):
    result = run_probe(["compile", "nets/googlenet.arch", "-o", str(tmp_path / "g.py")])
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr
    assert (tmp_path / "g.py").read_text().count("class ") == 3


def test_lark_and_networkx_stay_in_their_modules():
    sources = {p.name: p.read_text() for p in (ROOT / "archc").glob("*.py")}
    assert [n for n, s in sources.items() if "import lark" in s or "from lark" in s] == \
        ["parser.py"]
    assert [n for n, s in sources.items() if "networkx" in s.split('"""', 2)[-1]] == ["ir.py"]
    torch_users = sorted(n for n, s in sources.items() if "\nimport torch" in s)
    assert torch_users == ["export.py", "lower.py"]
    assert not [n for n, s in sources.items() if "import triton" in s]


def test_an_unwritable_cache_folder_only_costs_time(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache folder would go
    result = subprocess.run([sys.executable, "-m", "archc.cli", "check", "nets/vgg_a.arch"],
                            cwd=ROOT, capture_output=True, text=True,
                            env={**__import__("os").environ, "XDG_CACHE_HOME": str(blocked)})
    assert result.returncode == 0 and result.stdout == "1 file checked, no errors\n"
    assert result.stderr == ""


def test_backends_import_nothing_of_archc_and_only_they_import_triton():
    kernels = {p.name: p.read_text() for p in (ROOT / "backends").glob("*.py")}
    assert {"conv1x1.py", "pool2d.py", "global_avg_pool.py"} <= set(kernels)
    assert not [n for n, s in kernels.items() if "import archc" in s or "from archc" in s]
    front = {p.name: p.read_text() for p in (ROOT / "archc").rglob("*.py")}
    assert not [n for n, s in front.items() if "import triton" in s]
