"""Golden files: `archc stats` of every net, and the message of every broken program.

Each tests/errors/NAME.arch has its expected `archc check` output in NAME.err beside it.
Adding a net or an error case adds a test; `pytest --update-golden` writes the expectations.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, nets

ERROR_CASES = sorted(p.stem for p in (ROOT / "tests/errors").glob("*.arch"))


@pytest.mark.parametrize("name", nets())
def test_stats_table(archc, golden, name):
    status, out, err = archc("stats", f"nets/{name}")
    assert status == 0, err
    golden(ROOT / "tests/golden/stats" / name.replace(".arch", ".txt"), out)


@pytest.mark.parametrize("name", nets())
def test_stats_table_fits_160_columns(archc, name):
    status, out, err = archc("stats", f"nets/{name}")
    assert status == 0 and max(map(len, out.splitlines())) <= 160


def test_wide_stats_table(archc, golden):
    status, out, err = archc("stats", "nets/googlenet.arch", "--wide")
    assert status == 0, err
    assert "RF" in out.splitlines()[2] and "memory" in out.splitlines()[2]
    golden(ROOT / "tests/golden/stats/googlenet_wide.txt", out)


def test_vgg_comparison_table(archc, golden):
    vgg = [f"nets/{n}" for n in nets() if n.startswith("vgg_")]  # the paper's six
    status, out, err = archc("stats", *vgg)
    assert status == 0, err
    golden(ROOT / "tests/golden/stats/vgg_table2.txt", out)


def test_there_are_enough_error_cases():
    assert len(ERROR_CASES) >= 25


@pytest.mark.parametrize("name", ERROR_CASES)
def test_error_message(archc, golden, name):
    status, out, err = archc("check", f"tests/errors/{name}.arch")
    assert status == 1
    assert "Traceback" not in err
    assert err.startswith("tests/errors/") and ": error: " in err.splitlines()[0]
    golden(ROOT / "tests/errors" / f"{name}.err", err)
