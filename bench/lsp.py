"""How long the language server takes to re-analyse each shipped net after an edit: the
partial analysis (archc.pipeline.analyse_partial) and the index of facts the editor reads
(archc.lsp.facts), warm (the parser's tables loaded), the median of 5 runs each.

    .venv/bin/python bench/lsp.py            # every net; prints the slowest and the budget
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archc.lsp.facts import Facts  # noqa: E402
from archc.pipeline import analyse_partial  # noqa: E402

BUDGET_MS = 150  # issue 38: re-analysis on each change


def once(path: Path, text: str) -> float:
    start = time.perf_counter()
    facts = Facts(analyse_partial(str(path), text), str(path))
    facts.inlay_hints()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    times = {}
    for path in sorted((ROOT / "nets").glob("*.arch")):
        text = path.read_text()
        once(path, text)  # warm
        times[path.stem] = statistics.median(once(path, text) for _ in range(5))
    for name, ms in sorted(times.items(), key=lambda kv: -kv[1])[:10]:
        print(f"{name:28s} {ms:7.1f} ms")
    worst = max(times.values())
    print(f"{len(times)} nets: median {statistics.median(times.values()):.1f} ms, slowest "
          f"{worst:.1f} ms; budget {BUDGET_MS} ms: {'within' if worst <= BUDGET_MS else 'OVER'}")


if __name__ == "__main__":
    main()
