"""Checkpoints that cannot rot silently (issue 20): a checksum verified on load, resume from the
newest intact one, a save that fails inside torch's zip writer, a stale temporary removed, and a
hostile file refused with what it asked for.
"""

from __future__ import annotations

import errno
import os

import pytest
import torch

from archc.train import checkpoint
from archc.train.checkpoint import CheckpointError

MARK = 1234.5  # a value whose bytes are easy to find in the file


def state(value: float = MARK) -> dict:
    return {"model": {"conv.weight": torch.full((64,), value), "conv.bias": torch.zeros(4)},
            "epoch": 1, "config": '{"lr": 0.1}'}


def flip_a_bit_of_the_weights(path) -> None:
    raw = bytearray(path.read_bytes())
    at = raw.find(torch.tensor([MARK]).numpy().tobytes())
    assert at > 0
    raw[at + 1] ^= 0x04  # one bit of one float: 1234.5 becomes another number
    path.write_bytes(bytes(raw))


def test_a_flipped_bit_in_the_weights_is_caught(tmp_path):
    path = checkpoint.save(tmp_path, 1, state(), keep=3)
    weights = checkpoint.load(path)["model"]
    assert torch.equal(weights["conv.weight"], state()["model"]["conv.weight"])
    flip_a_bit_of_the_weights(path)
    assert torch.load(path, weights_only=True)["model"]["conv.weight"][0] != MARK  # torch reads on
    with pytest.raises(CheckpointError, match="corrupt: its contents do not match the checksum"):
        checkpoint.load(path)


def test_the_checksum_covers_every_tensor_and_value():
    assert checkpoint.checksum(state()) == checkpoint.checksum(state())
    assert checkpoint.checksum(state()) != checkpoint.checksum(state(MARK + 1))
    changed = state()
    changed["epoch"] = 2
    assert checkpoint.checksum(changed) != checkpoint.checksum(state())
    as_half = state()
    as_half["model"]["conv.bias"] = torch.zeros(8, dtype=torch.float16)  # the same zero bytes
    assert checkpoint.checksum(as_half) != checkpoint.checksum(state())  # dtype and shape count


def test_a_checkpoint_from_before_the_checksum_still_loads(tmp_path):
    old = tmp_path / "ckpt-000000001.pt"
    torch.save(state(), old)
    assert checkpoint.load(old)["epoch"] == 1


def test_resume_starts_from_the_newest_intact_checkpoint_and_says_so(tmp_path):
    for step in (1, 2, 3):
        checkpoint.save(tmp_path, step, {**state(), "epoch": step}, keep=3)
    newest = checkpoint.latest(tmp_path)
    flip_a_bit_of_the_weights(newest)
    said = []
    path, found = checkpoint.newest_intact(tmp_path, said.append)
    assert path.name == "ckpt-000000002.pt" and found["epoch"] == 2
    assert said == [f"warning: skipping {newest}: corrupt: its contents do not match the "
                    "checksum saved with them (a flipped bit on disk or in transit)"]


def test_no_intact_checkpoint_is_an_error_naming_the_newest(tmp_path):
    path = checkpoint.save(tmp_path, 1, state(), keep=3)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=f"no intact checkpoint in {tmp_path}: {path}: "
                                              "not a readable checkpoint"):
        checkpoint.newest_intact(tmp_path, lambda text: None)
    assert checkpoint.newest_intact(tmp_path / "empty", print) is None


def test_a_full_disk_inside_torchs_zip_writer_keeps_the_previous_checkpoint(tmp_path,
                                                                              monkeypatch):
    good = checkpoint.save(tmp_path, 1, state(), keep=3)

    def full(obj, f, *args, **kwargs):  # what torch raises when the disk fills mid-archive
        f.write(b"PK partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError) as error:
        checkpoint.save(tmp_path, 2, state(), keep=3)
    assert str(error.value) == (f"cannot write checkpoint {tmp_path / 'ckpt-000000002.pt'}: "
                                "[enforce fail at inline_container.cc:672] . unexpected pos 64; "
                                f"{good} is intact")
    assert checkpoint.checkpoints(tmp_path) == [good] and not list(tmp_path.glob(".ckpt-*"))


def test_a_temporary_left_by_a_kill_mid_save_is_removed_by_the_next_save(tmp_path):
    stale = tmp_path / ".ckpt-k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    checkpoint.save(tmp_path, 1, state(), keep=3)
    assert not stale.exists()


def test_a_hostile_checkpoint_says_which_code_it_asked_for(tmp_path):
    hostile = tmp_path / "hostile.pt"
    torch.save({"model": {}, "x": os.system}, hostile)
    with pytest.raises(CheckpointError) as error:
        checkpoint.load(hostile)
    message = str(error.value)
    assert message.startswith(f"{hostile}: refused: it asks to run code (")
    assert "system" in message and "weights_only=False" not in message
    assert message.endswith("archc loads tensors only and will not load this file")


def test_an_oserror_message_is_kept(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, 1, state(), keep=3)

    def full(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match="No space left on device; .* is intact"):
        checkpoint.save(tmp_path, 2, state(), keep=3)


def test_a_full_disk_is_said_as_such_not_as_torchs_zip_writer_assertion(tmp_path, monkeypatch):
    import shutil

    checkpoint.save(tmp_path, 1, state(), keep=3)

    def short_write(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", short_write)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1 << 20))
    with pytest.raises(CheckpointError) as error:
        checkpoint.save(tmp_path, 2, state(), keep=3)
    assert str(error.value) == (
        f"cannot write checkpoint {tmp_path / 'ckpt-000000002.pt'}: No space left on device "
        f"(1.0 MiB free in {tmp_path}); {tmp_path / 'ckpt-000000001.pt'} is intact")
