"""How many block instances `archc import` recovers from files without names: every shipped
net compiled, exported to ONNX (batch norms kept), every node's name and metadata stripped,
imported (`--blocks auto`: blocks found by structure), and its block instances compared with
the hand-written net's over the same weighted layers (tests/recovery.py says how). Prints
each net's count and the zoo's total, which tests/test_import_onnx_zoo.py keeps from dropping.

    .venv/bin/python bench/import_recovery.py [NET ...]
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from recovery import recovered  # noqa: E402

from archc.importer.trace import ImportFailure  # noqa: E402


def main(names: list[str]) -> None:
    warnings.filterwarnings("ignore")  # the exporter's deprecation notes
    logging.disable(logging.WARNING)
    names = names or sorted(p.stem for p in (ROOT / "nets").glob("*.arch"))
    found = total = 0
    print(f"{'net':28s} {'recovered':>9s} {'of':>4s}")
    for name in names:
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stderr(io.StringIO()):
            try:
                ours, theirs = recovered(name, Path(folder))
            except ImportFailure as failure:
                print(f"{name:28s} refused: {failure}")
                continue
        found, total = found + ours, total + theirs
        print(f"{name:28s} {ours:9d} {theirs:4d}", flush=True)
    print(f"{'zoo':28s} {found:9d} {total:4d}  ({found / max(total, 1):.0%})")


if __name__ == "__main__":
    main(sys.argv[1:])
