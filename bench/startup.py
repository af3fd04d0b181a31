"""Start-up: how long `archc check` and `archc stats` take on GoogLeNet, as a user's editor or
pre-commit hook runs them, against `python -c pass` on the same machine.

Each command runs as its own process (the import and set-up costs are the point), alternating
with the others so that drift on a shared machine hits them alike; the figure is the best of
`--repeat` runs and the ratio is against the best `python -c pass`. The LALR tables load from
grammars/arch_tables.json (no cache folder since issue 14): every run is the first run.
Target (issue 6): `archc stats nets/googlenet.arch` under 0.15 s.

    .venv/bin/python bench/startup.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NET = "nets/googlenet.arch"
ARCHC = [sys.executable, "-c", "from archc.cli.main import main; raise SystemExit(main())"]
COMMANDS = {
    "python -c pass": ([sys.executable, "-c", "pass"], False),
    f"archc check {NET}": ([*ARCHC, "check", NET], False),
    f"archc stats {NET}": ([*ARCHC, "stats", NET], False),
    f"archc stats {NET} --json": ([*ARCHC, "stats", NET, "--json"], False),
    f"archc stats {NET}, empty cache folder": ([*ARCHC, "stats", NET], True),
}


def run_once(argv: list[str], cold: bool) -> float:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as empty:
        if cold:
            env["XDG_CACHE_HOME"] = empty
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    run_once(COMMANDS[f"archc stats {NET}"][0], False)  # warm the page cache (and .pyc files)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, (argv, cold) in COMMANDS.items():
            times[name].append(run_once(argv, cold))
    baseline = min(times["python -c pass"])
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cores; best of {args.repeat}")
    print("| command | best | median | x python -c pass |")
    print("|---|---|---|---|")
    for name, runs in times.items():
        runs.sort()
        best, median = runs[0], runs[len(runs) // 2]
        print(f"| `{name}` | {best * 1e3:.0f} ms | {median * 1e3:.0f} ms | "
              f"{best / baseline:.1f} |")


if __name__ == "__main__":
    main()
