"""What a run folder promises: one run, one net, one set of options, one writer at a time.

A folder's checkpoints belong to the run that wrote them. Starting again with the same --out
(or with --resume DIR) continues that run, and only that run:

- The net is compared by its fingerprint (the checked IR, layer by layer, without names or
  comments); a changed net is refused: give another --out.
- Options that shape the run's trajectory (every `Config` field but those of `MAY_CHANGE`) are
  refused when they differ from the saved ones, naming each. `MAY_CHANGE` are how long it runs
  and how it is kept: --epochs, --max-steps (0 lifts the limit), --keep, --save-every, and
  --timeout.
- A lock file (`DIR/.lock`, flock) lets one process train in a folder at a time.
- `run.json` keeps the first start's manifest and appends each later start to `starts`.
- metrics.jsonl rows past the checkpoint a run resumes from (a kill between an epoch's row and
  its checkpoint) are dropped, so each epoch has one row.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import fields, replace
from pathlib import Path

from archc.train.config import Config
from archc.train.errors import DataError

MAY_CHANGE = frozenset({"epochs", "max_steps", "keep", "save_every", "out", "timeout"})
IGNORED = frozenset({"net", "recipe", "init_from"})  # the net is compared by fingerprint


class RunMismatch(DataError):
    """A folder's run and this command disagree (net or options): nothing was trained."""


def fingerprint(graph) -> str:
    """The net as its layers and their operands, without names, rows or comments."""
    lines = [line.split("  #")[0].rstrip() for line in graph.dump().splitlines()[1:]]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def refuse_changes(saved: Config, given: dict, folder: Path) -> None:
    """RunMismatch naming every option in `given` (name -> value) that differs from `saved`."""
    changed = [f"--{name.replace('_', '-')} {_shown(value)} (the run's: "
               f"{_shown(getattr(saved, name))})" for name, value in given.items()
               if name not in MAY_CHANGE | IGNORED and _differs(getattr(saved, name), value)]
    if changed:
        raise RunMismatch(f"{folder} holds a run with other options: {'; '.join(changed)}. A "
                          "resumed run keeps its options (only --epochs, --max-steps, --keep "
                          "and --save-every may change): give another --out to start anew")


def refuse_other_net(state: dict, graph, path: Path) -> None:
    saved = state.get("net_fingerprint")
    if saved is not None and saved != fingerprint(graph):
        raise RunMismatch(f"{path} was written by another net (the .arch file changed since): "
                          "a run folder holds one net's run; give another --out")


def same_options(config: Config, saved: Config, folder: Path) -> None:
    """The same --out started again: this command's config against the saved one."""
    refuse_changes(saved, {f.name: getattr(config, f.name) for f in fields(Config)}, folder)


def resumed_config(saved: Config, given: dict, folder: Path) -> Config:
    """--resume DIR: the saved config, with what may change applied; the rest refused."""
    refuse_changes(saved, given, folder)
    return replace(saved, out=str(folder), **{k: v for k, v in given.items()
                                              if k in MAY_CHANGE and k != "out"})


def find_net(config: Config, folder: Path) -> Config:
    """The run's net from wherever --resume is run: as saved, else from the folder it was
    started in (run.json's `cwd`)."""
    if Path(config.net).exists():
        return config
    started_in = _manifest(folder).get("cwd")
    if started_in and (Path(started_in) / config.net).exists():
        return replace(config, net=str(Path(started_in) / config.net))
    where = f" (nor from {started_in}, where the run started)" if started_in else ""
    raise DataError(f"--resume {folder}: cannot find the run's net {config.net} from here"
                    f"{where}")


def write_manifest(folder: Path, manifest: dict, resumed_from: Path | None) -> None:
    """run.json: the first start's manifest; each later start appended to `starts`."""
    path = folder / "run.json"
    first = _manifest(folder) if resumed_from is not None else {}
    start = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": manifest["command"],
             "resumed_from": str(resumed_from) if resumed_from else None}
    record = {**manifest, "starts": [start]} if not first else \
        {**first, "starts": [*first.get("starts", []), start]}
    _write_atomically(path, json.dumps(record, indent=1) + "\n")


def drop_rows_after(path: Path, epochs_done: int) -> None:
    """metrics.jsonl without the rows of epochs the resumed checkpoint has not finished."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("epoch", 0) <= epochs_done]
    if len(kept) != len(lines):
        _write_atomically(path, "".join(line + "\n" for line in kept))


class FolderLock:
    """An exclusive flock on DIR/.lock for the run's life: a second run on DIR is refused."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.handle = None

    def __enter__(self) -> FolderLock:
        import fcntl

        self.handle = open(self.path, "a+")  # held until __exit__, which releases the lock
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise DataError(f"{self.path.parent} is in use by another archc train ({holder}); "
                            "wait for it, or give another --out") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()}")
        self.handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()  # closing releases the lock


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _differs(saved, given) -> bool:
    if isinstance(saved, tuple | list) or isinstance(given, tuple | list):
        return [list(x) if isinstance(x, tuple | list) else x for x in saved or ()] != \
            [list(x) if isinstance(x, tuple | list) else x for x in given or ()]
    return saved != given


def _shown(value) -> str:
    if isinstance(value, tuple | list):
        return ",".join(map(str, value)) or "none"
    return str(value)
