"""`archc stats --format` (issue 39): the tables for a paper. Markdown and LaTeX (booktabs)
keep the cells, the paper column and the DIFFERS footnotes of the text table; CSV gives typed
values. The LaTeX compiles with pdflatex and renders (skipped without TeX Live or poppler)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest
from conftest import ROOT, nets

VGG = [f"nets/{n}" for n in nets() if n.startswith("vgg_")]  # the paper's six


@pytest.mark.parametrize("fmt, suffix", [("markdown", "md"), ("latex", "tex")])
def test_googlenets_table_1_and_vggs_table_2(archc, golden, fmt, suffix):
    status, out, err = archc("stats", "nets/googlenet.arch", "--format", fmt)
    assert status == 0, err
    golden(ROOT / f"tests/golden/stats/googlenet.{suffix}", out)
    assert out.count("DIFFERS [") == 7 and "[7] 5b: computed weights 1409.0Ki" in out
    status, out, err = archc("stats", *VGG, "--format", fmt)
    assert status == 0, err
    golden(ROOT / f"tests/golden/stats/vgg_table2.{suffix}", out)


def test_csv_holds_the_counts_as_numbers(archc):
    status, out, _ = archc("stats", "nets/googlenet.arch", "--format", "csv")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    table = json.loads(archc("stats", "nets/googlenet.arch", "--json")[1])
    by_name = {r["name"]: r for r in table["rows"] + table["heads"]}
    assert [r["name"] for r in rows] == list(by_name)
    for row in rows:
        expected = by_name[row["name"]]
        assert int(row["params"]) == expected["params"] and int(row["macs"]) == expected["macs"]
        assert [int(row[k]) for k in ("out_c", "out_h", "out_w")] == expected["shape"]
    assert rows[0]["check"] == "DIFFERS" and rows[0]["paper"] == "weights=2.7Ki macs=34M"
    status, out, _ = archc("stats", *VGG, "--format", "csv")
    assert [r["net"] for r in csv.DictReader(io.StringIO(out))] == \
        [p.split("/")[1].removesuffix(".arch") for p in VGG]


def test_json_and_a_format_are_refused_together(archc):
    status, _, err = archc("stats", "nets/vgg_a.arch", "--json", "--format", "csv")
    assert status == 2 and "--json and --format" in err


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="pdflatex (TeX Live) not installed")
def test_the_latex_table_compiles_and_renders(archc, tmp_path):
    status, table, _ = archc("stats", "nets/googlenet.arch", "--format", "latex")
    assert status == 0
    (tmp_path / "table.tex").write_text(table)
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n"
        "\\usepackage[landscape,margin=1cm]{geometry}\n"
        "\\begin{document}\n\\scriptsize\n\\input{table.tex}\n\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                             "paper.tex"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "paper.pdf").read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", "paper.pdf", "page"],
                       cwd=tmp_path, check=True)
        png = (tmp_path / "page.png").read_bytes()
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and width > height > 300  # one landscape page
