"""Checkpoints: written so a kill cannot corrupt them, read so a file cannot run code.

A checkpoint is one `torch.save` of tensors and primitives only: the model's and optimizer's
state, the scheduler's, the RNG states (as tensors), the epoch, the step within it and the
global step, and the run's config as a JSON string. It is written to a temporary file in the
same folder, fsynced, renamed over `ckpt-<step>.pt` and the folder fsynced, so a reader sees
the old file or the new one, never half of one; the newest K are kept. A temporary file left
by a kill mid-save is removed by the next save.

Each checkpoint stores a checksum (BLAKE2b) of every tensor and value in it; loading verifies
it, so a flipped bit is an error, not a silently worse net (checkpoints written before the
checksum existed load unverified). Loading uses `weights_only=True` (a file that asks for code
is refused, and the message says which global it wanted) and checks the model's keys and
shapes, naming the file and the first key that does not match. `newest_intact` is where a
resume starts: the newest checkpoint that reads and verifies, each skipped one said.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from archc.files import irregular, why_unloadable
from archc.train.errors import DataError

PATTERN = re.compile(r"ckpt-(\d+)\.pt$")


class CheckpointError(DataError):
    """A checkpoint that cannot be read, or does not fit the net."""


def save(folder: Path, step: int, state: dict, keep: int) -> Path:
    """Write `state` as checkpoint `step`; on failure (a full disk) the older ones stay."""
    path = folder / f"ckpt-{step:09d}.pt"
    temporary = None
    remove_temporaries(folder)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=folder)
        with os.fdopen(descriptor, "wb") as f:
            torch.save({**state, "checksum": checksum(state)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # RuntimeError: torch's zip writer on a full disk
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        last = latest(folder)
        kept = f"; {last} is intact" if last else ""
        reason = error.strerror if isinstance(error, OSError) and error.strerror else \
            _first_line(error)
        if isinstance(error, RuntimeError) and "inline_container" in str(error):
            reason = _why_the_zip_writer_failed(folder, reason)
        raise CheckpointError(f"cannot write checkpoint {path}: {reason}{kept}") from None
    except BaseException:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    for old in checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


FULL = 64 << 20  # bytes free under which a failed write is put down to a full disk


def _why_the_zip_writer_failed(folder: Path, said: str) -> str:
    """torch's zip writer fails a short write with its own assertion text ("[enforce fail at
    inline_container.cc:672] . unexpected pos ..."); where the disk is (nearly) full, say so."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return said
    if free < FULL:
        return f"No space left on device ({free / 2**20:.1f} MiB free in {folder})"
    return said


def checkpoints(folder: Path) -> list[Path]:
    """The checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if PATTERN.search(p.name)),
                  key=lambda p: int(PATTERN.search(p.name).group(1)))


def latest(folder: Path) -> Path | None:
    found = checkpoints(folder)
    return found[-1] if found else None


def load(path: Path) -> dict:
    if (kind := irregular(path)) is not None:  # a FIFO would block the reader for ever
        raise CheckpointError(f"{path}: it is {kind}, not a checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as error:  # truncated zip, a pickle that wants code, a non-checkpoint
        raise CheckpointError(f"{path}: {why_unloadable(error)}") from None
    if isinstance(state, dict) and state and "model" not in state and \
            all(isinstance(v, torch.Tensor) for v in state.values()):
        return {"model": state}  # a bare state_dict: `archc weights`' output, a module's own
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: neither an archc checkpoint (no 'model' entry) nor a "
                              "state_dict (a dict of tensors)")
    stored = state.pop("checksum", None)
    if stored is not None and stored != checksum(state):
        raise CheckpointError(f"{path}: corrupt: its contents do not match the checksum saved "
                              "with them (a flipped bit on disk or in transit)")
    return state


def newest_intact(folder: Path, say: Callable[[str], None]) -> tuple[Path, dict] | None:
    """The newest checkpoint that reads and verifies, and its state; each one skipped (corrupt
    or unreadable) is said. None when there is none; the newest's error when none is intact."""
    found = checkpoints(folder)
    first_error = None
    for path in reversed(found):
        try:
            return path, load(path)
        except CheckpointError as error:
            first_error = first_error or error
            say(f"warning: skipping {error}")
    if first_error is not None:
        raise CheckpointError(f"no intact checkpoint in {folder}: {first_error}")
    return None


def checksum(state) -> str:
    """BLAKE2b of every tensor's dtype, shape and bytes and every other value, keys sorted."""
    digest = hashlib.blake2b(digest_size=16)
    _feed(digest, state)
    return digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
                      if tensor.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"V{value!r}".encode())


def remove_temporaries(folder: Path) -> None:
    """The `.ckpt-*.tmp` files a save killed midway left (only one writer runs at a time)."""
    for stale in folder.glob(".ckpt-*.tmp") if folder.is_dir() else ():
        stale.unlink(missing_ok=True)


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def check_fits(path: Path, weights: dict, model: torch.nn.Module) -> None:
    """CheckpointError naming the first key whose presence or shape differs."""
    expected = model.state_dict()
    for key in expected:
        if key not in weights:
            raise CheckpointError(f"{path}: does not fit this net: '{key}' is missing")
        if tuple(weights[key].shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{path}: does not fit this net: '{key}' is "
                f"{list(weights[key].shape)} there, {list(expected[key].shape)} here")
    for key in weights:
        if key not in expected:
            raise CheckpointError(f"{path}: does not fit this net: unexpected '{key}'")


def writable(folder: Path) -> None:
    """Fail before training if checkpoints cannot be written to `folder`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as error:
        raise CheckpointError(f"cannot write to {folder}: {error.strerror}") from None


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some systems cannot open a folder; the rename is done either way
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
