"""Files a command reads whole or writes: what archc refuses before touching them. No torch.

Read: a checkpoint or a source must be a regular file (a FIFO blocks the reader for ever, a
device never ends, a folder is no file); a checkpoint torch refuses is said without torch's
advice to run its code (`why_unloadable`). Written: the target is a new file or an existing
regular one, never an input of the same command (`archc weights -o X --torchvision X` would
overwrite the checkpoint it reads), and never a device (as root, renaming a temporary over
`/dev/null` replaces the device node with a plain file); it is written to a temporary beside
it and renamed into place, and the temporary is removed whatever happens.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
         (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def irregular(path: str | os.PathLike) -> str | None:
    """What `path` is if it exists and is no regular file ("a FIFO", "a folder"), else None
    (a regular file, or nothing there: the caller says "no such file" its own way)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in KINDS if test(mode)), "not a regular file")


def refusal_to_write(path: str | os.PathLike, *inputs: str | os.PathLike) -> str | None:
    """Why `path` may not be written by a command reading `inputs`, or None."""
    target = Path(path)
    if (kind := irregular(target)) is not None:
        return f"refusing to write {path}: it is {kind}, not a regular file"
    if not target.resolve().parent.is_dir():
        return f"cannot write {path}: no such folder"
    resolved = target.resolve()
    if not os.access(resolved.parent, os.W_OK) or (resolved.exists() and
                                                   not os.access(resolved, os.W_OK)):
        return f"cannot write {path}: permission denied"
    for source in inputs:
        if source is not None and resolved == Path(source).resolve():
            return f"refusing to write {path}: it is an input of this command ({source})"
    return None


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """`write(temporary)`, then the temporary renamed over `path`; the temporary removed if
    anything fails (a full disk, an interrupt), so no partial file is left on either name."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(str(temporary))
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def why_unloadable(error: BaseException) -> str:
    """torch.load's refusal, said archc's way: what a pickle asks to run, without torch's
    advice to load it with weights_only=False (which would run it)."""
    text = str(error)
    if wanted := re.search(r"GLOBAL ([\w.]+)", text):
        return (f"refused: it asks to run code ({wanted.group(1)}); archc loads tensors only "
                "and will not load this file")
    if unpickler := re.search(r"WeightsUnpickler error:\s*([^\n]+)", text):
        return f"not a readable checkpoint ({unpickler.group(1).strip()})"
    if "Weights only load failed" in text:
        return ("refused: it holds an object that is not a tensor; archc loads tensors only and "
                "will not load this file")
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"not a readable checkpoint ({first})"
