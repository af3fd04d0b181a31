"""The command line: exit statuses, --help, --json, --set, and what bad input gets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("command", [[], ["stats"], ["check"]])
def test_help(archc, command):
    status, out, err = archc(*command, "--help")
    assert status == 0 and "usage: archc" in out and err == ""


def test_check_valid_files_exits_0_with_paper_warnings(archc):
    status, out, err = archc("check", "nets/googlenet.arch", "nets/vgg_a.arch")
    assert status == 0
    assert out == "2 files checked, no errors\n"
    assert "nets/googlenet.arch:12:" in err and ": warning: the paper prints weights 2.7Ki" in err
    assert ": error:" not in err


def test_check_json_lists_diagnostics(archc):
    status, out, err = archc("check", "--json", "tests/errors/error_inside_block.arch",
                             "nets/googlenet.arch")
    assert status == 1 and err == ""
    diagnostics = json.loads(out)
    first = diagnostics[0]
    assert (first["file"], first["line"], first["column"], first["severity"]) == \
        ("tests/errors/error_inside_block.arch", 3, 5, "error")
    assert first["notes"] == [{"file": "tests/errors/error_inside_block.arch", "line": 10,
                               "column": 5, "message": "in block 'stage' used here"}]
    warnings = [d for d in diagnostics if d["file"] == "nets/googlenet.arch"]
    assert len(warnings) == 9 and {d["severity"] for d in warnings} == {"warning"}


def test_check_reports_every_broken_file(archc):
    status, out, err = archc("check", "tests/errors/unknown_op.arch", "nets/vgg_a.arch",
                             "tests/errors/zero_channels.arch")
    assert status == 1
    assert err.count(": error:") == 2


@pytest.mark.parametrize("args", [
    ["stats"],                                   # no file
    ["stats", "nets/nothere.arch"],              # unreadable file
    ["stats", "nets/vgg_a.arch", "--set", "classes"],        # not NAME=VALUE
    ["stats", "nets/vgg_a.arch", "--set", "clases=10"],      # unknown parameter
    ["check", "--bogus", "nets/vgg_a.arch"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(archc, args):
    status, out, err = archc(*args)
    assert status == 2
    assert "Traceback" not in err and "error" in err


def test_unknown_set_name_lists_the_parameters(archc):
    status, out, err = archc("stats", "nets/vgg_a.arch", "--set", "clases=10")
    assert err == "archc: error: net 'vgg_a' has no parameter 'clases' (it takes: classes)\n"


def test_stats_refuses_a_net_with_a_failed_expect(archc):
    status, out, err = archc("stats", "tests/errors/expect_shape_failed.arch")
    assert status == 1 and out == ""
    assert "error: expected output 3x16x16, computed 3x15x15" in err


def test_json_rows_carry_every_documented_field(archc):
    status, out, err = archc("stats", "nets/googlenet.arch", "--json")
    data = json.loads(out)
    assert {"net", "input", "rows", "total", "training_total", "heads"} <= set(data)
    assert data["input"] == [3, 224, 224]
    row = data["rows"][6]
    assert row["name"] == "3a" and row["args"]["n3r"] == 96
    assert {"name", "type", "shape", "depth", "params", "weights", "macs", "paper",
            "receptive_field", "stride", "activations"} <= set(row)
    assert row["activations"] == 256 * 28 * 28


def test_installed_script_runs_from_another_directory(tmp_path):
    """The grammar is found wherever archc is run from."""
    result = subprocess.run([sys.executable, "-m", "archc.cli", "stats",
                             str(ROOT / "nets/nin_cifar10.arch"), "--json"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total"]["params"] > 0


def test_the_wheel_carries_the_grammar(tmp_path):
    """`pip install .` (not only editable) must find grammars/arch.lark from anywhere."""
    import shutil
    import zipfile

    pytest.importorskip("setuptools")
    source = tmp_path / "src"  # a copy: setuptools builds in the source tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", ".hypothesis"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("archc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "archc/grammars/arch.lark" in names and "archc/parser.py" in names
