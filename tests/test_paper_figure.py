"""`archc graph --style paper` (archc.report.figure): a block-level figure for a paper, as
Graphviz (SVG's structure golden: boxes, edges, labels) and as TikZ (golden, and compiled by
pdflatex where TeX Live has TikZ)."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ElementTree

import pytest
from conftest import ROOT

from archc.pipeline import analyse
from archc.report.figure import TIKZ_PREAMBLE, boxes

pytest.importorskip("graphviz")
needs_dot = pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz's dot not installed")


def structure(svg: str) -> str:
    """What an SVG figure shows: each node's text and each edge, as lines."""
    ns = {"svg": "http://www.w3.org/2000/svg"}
    root = ElementTree.fromstring(svg)
    lines = []
    for group in root.iter("{http://www.w3.org/2000/svg}g"):
        kind, title = group.get("class"), group.find("svg:title", ns)
        texts = [t.text or "" for t in group.findall("svg:text", ns)]
        if kind == "node":
            lines.append(f"box {title.text}: {' | '.join(texts)}")
        elif kind == "edge":
            lines.append(f"edge {title.text.replace('->', ' -> ')}" +
                         (f" [{' '.join(texts)}]" if texts else ""))
        elif kind == "cluster":
            lines.append(f"stage {' '.join(texts)}")
    return "\n".join(lines) + "\n"


@needs_dot
@pytest.mark.parametrize("name", ["googlenet", "resnet50"])
def test_the_paper_figures_structure(archc, golden, tmp_path, name):
    status, _, err = archc("graph", f"nets/{name}.arch", "-o", str(tmp_path / "f.svg"),
                           "--style", "paper")
    assert status == 0, err
    golden(ROOT / f"tests/golden/figure/{name}.txt", structure((tmp_path / "f.svg").read_text()))


def test_a_box_per_statement_with_its_shape_and_shortcuts_where_blocks_add_them():
    googlenet = boxes(analyse(ROOT / "nets/googlenet.arch"))
    rows = analyse(ROOT / "nets/googlenet.arch").graph.rows
    assert len(googlenet) == len(rows)  # a box per statement (the input is none)
    assert [b.title for b in googlenet if b.title.startswith("inception")][:2] == \
        ["inception (3a)", "inception (3b)"]
    assert [(b.title, b.reads) for b in googlenet if b.head] == [("aux1", ["r9"]),
                                                                 ("aux2", ["r12"])]
    assert not any(b.skip for b in googlenet)
    resnet = boxes(analyse(ROOT / "nets/resnet50.arch"))
    assert [b.skip for b in resnet] == [None, None] + ["identity"] * 4 + [None, None]
    assert resnet[3].title == "layer2: bottleneck_proj, bottleneck x3"
    assert resnet[3].shape == "512x28x28"


def test_the_tikz_figure(archc, golden, tmp_path):
    status, _, err = archc("graph", "nets/googlenet.arch", "-o", str(tmp_path / "f.tex"),
                           "--style", "paper")
    assert status == 0, err
    golden(ROOT / "tests/golden/figure/googlenet.tex", (tmp_path / "f.tex").read_text())
    status, _, err = archc("graph", "nets/googlenet.arch", "-o", str(tmp_path / "g.tex"))
    assert status == 2 and "(and .tex with --style paper)" in err
    assert not (tmp_path / "g.tex").exists()


@pytest.mark.skipif(not shutil.which("pdflatex") or not shutil.which("kpsewhich") or
                    not subprocess.run(["kpsewhich", "tikz.sty"], capture_output=True,
                                       text=True).stdout.strip(),
                    reason="pdflatex with TikZ (TeX Live's texlive-pictures) not installed")
@pytest.mark.parametrize("name", ["googlenet", "resnet50"])
def test_the_tikz_figure_compiles_and_renders(archc, tmp_path, name):
    status, _, err = archc("graph", f"nets/{name}.arch", "-o", str(tmp_path / "figure.tex"),
                           "--style", "paper")
    assert status == 0, err
    (tmp_path / "paper.tex").write_text(
        f"\\documentclass{{article}}\n{TIKZ_PREAMBLE}\n\\pagestyle{{empty}}\n"
        "\\begin{document}\n\\input{figure.tex}\n\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                             "paper.tex"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Overfull" not in result.stdout
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", "paper.pdf", "page"],
                       cwd=tmp_path, check=True)
        assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paper_and_expand_are_refused_together(archc, tmp_path):
    status, _, err = archc("graph", "nets/googlenet.arch", "-o", str(tmp_path / "f.svg"),
                           "--style", "paper", "--expand")
    assert status == 2 and "choose one" in err
    assert not (tmp_path / "f.svg").exists()


@needs_dot
def test_diff_draws_b_with_the_changed_and_added_statements_filled(archc, tmp_path):
    """VGG-E against VGG-A: the five conv stages changed (two, two, four, four, four convs
    where A has one, one, two, two, two), the pools and the classifier the same."""
    from archc.report.figure import MARKS

    status, _, err = archc("diff", "nets/vgg_a.arch", "nets/vgg_e.arch", "--graph",
                           str(tmp_path / "d.svg"))
    assert status == 1, err
    svg = (tmp_path / "d.svg").read_text()
    boxes = [line for line in structure(svg).splitlines() if line.startswith("box r")]
    assert svg.count(f'fill="{MARKS["changed"]}"') == 5 and len(boxes) == 11
    assert "vgg_e against vgg_a: 5 changed (orange), 0 added (green), 0 removed" in svg
    status, _, _ = archc("diff", "nets/vgg_e.arch", "nets/vgg_e.arch", "--graph",
                         str(tmp_path / "same.svg"))
    assert status == 0 and MARKS["changed"] not in (tmp_path / "same.svg").read_text()
