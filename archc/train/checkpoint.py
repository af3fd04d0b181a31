"""Checkpoints: written so a kill cannot corrupt them, read so a file cannot run code.

A checkpoint is one `torch.save` of tensors and primitives only: the model's and optimizer's
state, the scheduler's, the RNG states (as tensors), the epoch, the step within it and the
global step, and the run's config as a JSON string. It is written to a temporary file in the
same folder, fsynced, renamed over `ckpt-<step>.pt` and the folder fsynced, so a reader sees
the old file or the new one, never half of one; the newest K are kept. Loading uses
`weights_only=True` and checks the model's keys and shapes, naming the file and the first key
that does not match.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import torch

from archc.train.formats import DataError

PATTERN = re.compile(r"ckpt-(\d+)\.pt$")


class CheckpointError(DataError):
    """A checkpoint that cannot be read, or does not fit the net."""


def save(folder: Path, step: int, state: dict, keep: int) -> Path:
    """Write `state` as checkpoint `step`; on failure (a full disk) the older ones stay."""
    path = folder / f"ckpt-{step:09d}.pt"
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=folder)
        with os.fdopen(descriptor, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as error:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        last = latest(folder)
        kept = f"; {last} is intact" if last else ""
        raise CheckpointError(f"cannot write checkpoint {path}: "
                              f"{error.strerror or error}{kept}") from None
    except BaseException:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    for old in checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


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
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as error:  # truncated zip, a pickle that wants code, a non-checkpoint
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not an archc checkpoint (no 'model' entry)")
    return state


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
