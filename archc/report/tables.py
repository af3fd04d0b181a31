"""Report: `NetStats` -> the text tables of `archc stats` (`--json` is `NetStats.to_json()`).

`render_table` lays one net out as GoogLeNet's Table 1 in at most 160 columns: the paper's
columns, params and MACs, the printed values and whether they agree. `wide=True` adds weights
(Table 1's "params": no biases), receptive field, stride, activations and memory. A row whose
printed values differ gets a numbered footnote under the table, and a paragraph says what the
differences are. The counting conventions close every table. `render_comparison` gives one
line per net, as VGG's Table 2. Each also as Markdown, LaTeX (booktabs) or CSV (`--format`):
the same cells and footnotes; CSV's values typed, for a spreadsheet.
"""

from __future__ import annotations

import textwrap

from archc.report.stats import NetStats, PaperValue, RowStats

CONVENTIONS = (
    "params = weights + biases (PyTorch's sum of p.numel()); weights exclude biases. "
    "MACs = multiply-accumulates of conv and fc layers for one image (FLOPs = 2 x MACs).",
    "depth = weight layers on the longest path through a row; RF = receptive field in input "
    "pixels; stride = cumulative stride; output is HxWxC as in the papers (JSON: [C, H, W]); "
    "activations = elements of a row's output (the total adds up every layer's output).",
    "Printed values: Ki = 1024, K = 1000, M = 10^6, G = 10^9; one agrees when the computed "
    "value is within one unit of its last printed digit.",
    "Rounding: convolutions round down; each pool rounds as written (ceil drops a window "
    "that would start in the padding, as Caffe does).",
)
BUFFERS = ("buffers = batch norm's running mean and variance, kept in the state_dict but not "
           "learnt, so not params (PyTorch's num_batches_tracked counter left out); batch "
           "norm's scale and shift are params, not weights. Batch norm, activations and the "
           "additions of a sum count no MACs (a batch norm folds into the conv before it at "
           "inference).")
MEMORY = ("memory = a row's output in float32 (4 bytes an element), for one image; the total "
          "adds up every layer's output, as a training step keeps them for the backward pass.")
FINDING = ("The finding: {rows} of the {compared} rows with printed values DIFFER, their "
           "printed counts not following from the widths in this file (within one unit of the "
           "last printed digit). archc computes every count from the widths; where those are "
           "the paper's own, the paper's printed counts and its printed widths disagree. See "
           "docs/language.md, 'What DIFFERS means'.")



def render_table(net: NetStats, wide: bool = False, fmt: str = "text") -> str:
    """One net's table: `fmt` text (the terminal's), markdown (a pipe table), latex
    (booktabs) or csv (typed values: plain integers, the shape as three columns)."""
    if fmt == "csv":
        return _csv_rows(net, wide)
    rows = net.rows + net.heads
    arg_names = list(dict.fromkeys(k for r in rows for k in r.args))
    has_paper = any(r.paper for r in rows)
    buffers = net.training_total.buffers > 0
    headers = ["name", "type", "patch", "output", "depth", *arg_names, *["weights"] * wide,
               "params", *["buffers"] * buffers, "MACs",
               *["RF", "stride", "activations", "memory"] * wide]
    headers += ["paper", "check"] * has_paper
    footnotes: list[str] = []
    lines = [_table_row(r, arg_names, wide, has_paper, footnotes, buffers) for r in rows]
    align = ["left", "left", "left", "right", "right", *["right"] * len(arg_names)]
    align += ["right"] * (2 + buffers + 5 * wide) + ["left", "left"] * has_paper
    if fmt != "text":
        return _document(fmt, _title(net), lines, headers, align, footnotes,
                         _paragraphs(net, rows, wide))
    table = _tabulate(lines, headers, align)
    return "\n".join([_title(net), "", table, "", *footnotes, *_finding(rows), *_footer(net, wide)])


def _document(fmt: str, title: str, lines: list[list[str]], headers: list[str],
              align: list[str], footnotes: list[str], notes: list[str]) -> str:
    """A Markdown or LaTeX table with its title, footnotes and notes as that format writes
    them (LaTeX: a booktabs tabular, `\\usepackage{booktabs}`)."""
    paragraphs = notes
    if fmt == "markdown":
        table = _tabulate(lines, headers, align, "github")
        notes_md = [f"- {n}" for n in footnotes] + [""] * bool(footnotes) + \
            [p + "\n" for p in paragraphs]
        return "\n".join([f"**{title}**", "", table, "", *notes_md]).rstrip() + "\n"
    table = _tabulate(lines, headers, align, "latex_booktabs")
    text = [f"% {title}", table]
    text += ["\\par\\smallskip{\\footnotesize"] + [_latex(n) + "\\par" for n in footnotes] + \
        [_latex(p) + "\\par" for p in paragraphs] + ["}"]
    return "\n".join(text) + "\n"


def _paragraphs(net: NetStats, rows: tuple[RowStats, ...], wide: bool) -> list[str]:
    """What follows the table, a paragraph a note, unwrapped: the finding, the totals, the
    counting conventions (the text table's footer, for formats that wrap their own lines)."""
    finding = [" ".join(line for line in _finding(rows) if line)]
    footer = _footer(net, wide)
    totals = footer[:footer.index("")]
    conventions = CONVENTIONS + (BUFFERS,) * (net.training_total.buffers > 0) + \
        (MEMORY,) * wide
    return [p for p in finding if p] + [" ".join(line.split()) for line in totals] + \
        list(conventions)


def _latex(text: str) -> str:
    for char, escaped in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"),
                          ("$", "\\$"), ("#", "\\#"), ("_", "\\_"), ("{", "\\{"),
                          ("}", "\\}"), ("^", "\\^{}"), ("~", "\\~{}")):
        text = text.replace(char, escaped)
    return text


def _csv_rows(net: NetStats, wide: bool) -> str:
    """The rows as typed values for a spreadsheet: integers without separators, the output
    shape as out_c, out_h, out_w, a block's arguments in their own columns."""
    import csv
    import io

    rows = net.rows + net.heads
    arg_names = list(dict.fromkeys(k for r in rows for k in r.args))
    headers = ["name", "type", "patch", "out_c", "out_h", "out_w", "depth", *arg_names,
               "weights", "params", "buffers", "macs", "paper", "check"]
    headers += ["receptive_field", "stride", "activations", "memory_bytes"] * wide
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for r in rows:
        c, h, w = r.shape
        paper = " ".join(f"{p.key}={p.printed}" for p in r.paper)
        check = _check_word(r.paper)
        writer.writerow([r.name, _short_type(r), r.patch, c, h, w, r.depth,
                         *[r.args.get(name, "") for name in arg_names], r.counts.weights,
                         r.counts.params, r.counts.buffers, r.counts.macs, paper, check,
                         *[r.receptive_field, r.stride, r.activations, r.memory] * wide])
    return out.getvalue()


def _title(net: NetStats) -> str:
    params = ", ".join(f"{k}={v}" for k, v in net.params.items())
    folded = "  (batch norm folded into the conv before it, as at inference)" * net.bn_folded
    return (f"{net.net}({params})  {net.file}  input {net.input.c}x{net.input.h}x"
            f"{net.input.w}{folded}")


def _table_row(row: RowStats, arg_names: list[str], wide: bool, has_paper: bool,
               footnotes: list[str], buffers: bool = False) -> list[str]:
    c, h, w = row.shape
    cells = [row.name, _short_type(row), row.patch, f"{h}x{w}x{c}", str(row.depth)]
    cells += [_number(row.args.get(name, "")) for name in arg_names]
    counts = row.counts
    shown = (counts.weights,) * wide + (counts.params,) + (counts.buffers,) * buffers + \
        (counts.macs,)
    cells += [f"{n:,}" if n else "" for n in shown]
    if wide:
        cells += [str(row.receptive_field), str(row.stride), f"{row.activations:,}",
                  _bytes(row.memory)]
    if has_paper:
        cells += _paper_cells(row.name, row.paper, footnotes)
    return cells


def _short_type(row: RowStats) -> str:
    """The type without what the name column already says (`3a` for `inception (3a)`)."""
    if row.head is not None:
        return f"head from {row.head[0]} ({row.head[1]:g})"
    return row.type.removesuffix(f" ({row.name})")


def _paper_cells(name: str, paper: tuple[PaperValue, ...], footnotes: list[str]) -> list[str]:
    if not paper:
        return ["", ""]
    printed = " ".join(f"{p.key}={p.printed}" for p in paper)
    unchecked = [p for p in paper if p.default is not None]
    wrong = [p for p in paper if p.default is None and not p.agrees]
    if not unchecked and not wrong:
        return [printed, "ok"]
    notes = []
    if wrong:
        notes.append("computed " + ", ".join(f"{p.key} {p.computed}" for p in wrong))
    if unchecked:
        notes.append("not compared, --set changed " + ", ".join(
            f"{p.key} ({p.default} with the defaults, {p.computed} now)" for p in unchecked))
    footnotes.append(f"[{len(footnotes) + 1}] {name}: {'; '.join(notes)}")
    verdict = "DIFFERS" if wrong else "not checked"
    return [printed, f"{verdict} [{len(footnotes)}]"]


def _check_word(paper: tuple[PaperValue, ...]) -> str:
    """The check column's word without its footnote: ok, DIFFERS, not checked, or nothing."""
    if any(p.default is None and not p.agrees for p in paper):
        return "DIFFERS"
    return "not checked" if any(p.default is not None for p in paper) else "ok" * bool(paper)


def _finding(rows: tuple[RowStats, ...]) -> list[str]:
    compared = [r for r in rows if any(p.default is None for p in r.paper)]
    differ = [r for r in compared if any(p.default is None and not p.agrees for p in r.paper)]
    if not differ:
        return [""] * bool(compared)
    text = FINDING.format(rows=len(differ), compared=len(compared))
    return ["", textwrap.fill(text, 100), ""]


def _number(value) -> str:
    if isinstance(value, float):  # a computed rate (0.2 * 3 / 55): the table shows 4 digits,
        return f"{value:.4g}"     # --json the exact value
    return f"{value:,}" if isinstance(value, int) else str(value)


def _bytes(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def _footer(net: NetStats, wide: bool) -> list[str]:
    t, tt = net.total, net.training_total
    memory = f" ({_bytes(net.memory)})" if wide else ""
    buffers = f", {t.buffers:,} buffers" if net.training_total.buffers else ""
    lines = _wrapped(f"total (inference, heads excluded): {net.depth} weight layers deep, "
                     f"{t.weights:,} weights, {t.params:,} params{buffers}, {t.macs:,} MACs, "
                     f"{net.activations:,} activations{memory}")
    if net.heads:
        names = ", ".join(h.name for h in net.heads)
        lines.append(f"training total (with heads {names}): {tt.weights:,} weights, "
                     f"{tt.params:,} params, {tt.macs:,} MACs")
    lines += [f"paper, whole net: {p.key}={p.printed}, {_verdict(p)}" for p in net.paper]
    return lines + [""] + _conventions(wide, net.training_total.buffers > 0)


def _wrapped(line: str, width: int = 160) -> list[str]:
    """`line` as one line, or two at the last ", " that keeps the first within `width`
    (EfficientNet-B7's counts); the second indented."""
    if len(line) <= width:
        return [line]
    cut = line.rindex(", ", 0, width)
    return [line[: cut + 1], "  " + line[cut + 2:]]


def _verdict(p: PaperValue) -> str:
    if p.default is not None:
        return f"not compared: --set changed it ({p.default} with the defaults, {p.computed} now)"
    return f"computed {p.computed} ({'agrees' if p.agrees else 'DIFFERS'})"


def _conventions(wide: bool = False, buffers: bool = False) -> list[str]:
    return [textwrap.fill(c, 100, subsequent_indent="  ")
            for c in CONVENTIONS + (BUFFERS,) * buffers + (MEMORY,) * wide]


def render_comparison(nets: list[NetStats], fmt: str = "text") -> str:
    """One line per net, as VGG's Table 2, in `fmt` (see render_table)."""
    buffers = any(net.total.buffers for net in nets)
    headers = ["net", "file", "input", "depth", "weights", "params", *["buffers"] * buffers,
               "MACs", "activations", "paper", "check"]
    lines, footnotes = [], []
    for net in nets:
        c, h, w = net.input
        t = net.total
        if fmt == "csv":
            lines.append([net.net, net.file, f"{c}x{h}x{w}", net.depth, t.weights, t.params,
                          *[t.buffers] * buffers, t.macs, net.activations,
                          " ".join(f"{p.key}={p.printed}" for p in net.paper),
                          _check_word(net.paper)])
            continue
        lines.append([net.net, net.file, f"{c}x{h}x{w}", str(net.depth), f"{t.weights:,}",
                      f"{t.params:,}", *[f"{t.buffers:,}"] * buffers, f"{t.macs:,}",
                      f"{net.activations:,}", *_paper_cells(net.net, net.paper, footnotes)])
    align = ["left", "left", "left", *["right"] * (5 + buffers), "left", "left"]
    note = "Totals are for inference (auxiliary heads excluded), as the papers' tables count."
    if fmt == "csv":
        import csv
        import io

        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([headers, *lines])
        return out.getvalue()
    if fmt != "text":
        return _document(fmt, "archc stats", lines, headers, align, footnotes,
                         [note, *CONVENTIONS, *(BUFFERS,) * buffers])
    table = _tabulate(lines, headers, align)
    return "\n".join([table, "", *footnotes, *[""] * bool(footnotes), note,
                      *_conventions(buffers=buffers)])


def _tabulate(lines: list[list[str]], headers: list[str], align: list[str],
              style: str = "simple") -> str:
    from tabulate import tabulate  # imported here: --json never needs it (a fifth of start-up)

    return tabulate(lines, headers, tablefmt=style, disable_numparse=True, colalign=align)
