"""Nothing harmed (issue 35's first round): a command that writes a file refuses a target that
exists and is no regular file (a device, a FIFO, a folder) and one that is its own input,
writes through a temporary it never leaves behind; a FIFO given as a checkpoint is refused,
not read for ever; 16-bit images are scaled, not clipped; the interpreter's wrong bfloat16
dot products are not used. The FIFOs and folders are made in tmp_path: a test that failed
must not replace a real device node (CI runs as root)."""

from __future__ import annotations

import os
import stat
import warnings

import numpy as np
import pytest
import torch

from archc.files import write_atomically


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", [
    ["compile", "nets/nin_digits.arch", "-o", "{target}"],
    ["graph", "nets/nin_digits.arch", "-o", "{target}"],
    ["export", "nets/nin_digits.arch", "--onnx", "{target}"],
    ["weights", "nets/resnet18.arch", "--torchvision", "nets/resnet18.arch", "-o", "{target}"],
], ids=["compile", "graph", "export", "weights"])
@pytest.mark.parametrize("kind", ["a FIFO", "a folder"])
def test_a_target_that_is_no_regular_file_is_refused_before_any_work(archc, tmp_path, fifo,
                                                                     command, kind):
    target = fifo if kind == "a FIFO" else tmp_path / "folder"
    target.mkdir(exist_ok=True) if kind == "a folder" else None
    status, out, err = archc(*(a.format(target=target) for a in command))
    assert status == 2
    assert f"refusing to write {target}: it is {kind}, not a regular file" in err
    assert stat.S_ISFIFO(os.stat(target).st_mode) if kind == "a FIFO" else target.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["pipe", "folder"][
        :2 if kind == "a folder" else 1])  # no temporary left beside it


def test_weights_refuse_to_write_over_the_checkpoint_they_read(archc, tmp_path):
    checkpoint = tmp_path / "resnet18.pth"
    checkpoint.write_bytes(b"the original")
    status, out, err = archc("weights", "nets/resnet18.arch", "--torchvision", str(checkpoint),
                             "-o", str(checkpoint))
    assert status == 2
    assert f"refusing to write {checkpoint}: it is an input of this command" in err
    assert checkpoint.read_bytes() == b"the original"


def test_a_fifo_given_as_a_checkpoint_is_refused_not_read(archc, tmp_path, fifo):
    from archc.train import checkpoint
    from archc.train.errors import DataError

    status, out, err = archc("weights", "nets/resnet18.arch", "--torchvision", str(fifo),
                             "-o", str(tmp_path / "out.pt"))
    assert status == 2 and f"cannot read {fifo}: it is a FIFO, not a checkpoint file" in err
    with pytest.raises(DataError, match="it is a FIFO, not a checkpoint file"):
        checkpoint.load(fifo)  # archc eval --checkpoint and archc train --init-from read so


def test_a_write_that_fails_leaves_neither_a_temporary_nor_a_partial_file(tmp_path):
    target = tmp_path / "out.pt"
    target.write_bytes(b"before")

    def fail(temporary):
        with open(temporary, "wb") as out:
            out.write(b"half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError):
        write_atomically(target, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["out.pt"]
    assert target.read_bytes() == b"before"


def test_sixteen_bit_images_are_scaled_to_eight_bits_not_clipped(tmp_path):
    from PIL import Image

    from archc.train.errors import DataError
    from archc.train.formats import folder

    for name, value in (("dark", 1000), ("bright", 60000)):
        (tmp_path / name).mkdir()
        Image.fromarray(np.full((4, 4), value, dtype=np.uint16)).save(tmp_path / name / "x.png")
    images, labels, classes = folder(tmp_path, ["dark", "bright"])
    assert images[:, 0, 0, 0].tolist() == [round(1000 * 255 / 65535), round(60000 * 255 / 65535)]
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(tmp_path / "dark" / "f.tiff")
    with pytest.raises(DataError, match="f.tiff: floating-point pixels"):
        folder(tmp_path, ["dark", "bright"])


def test_bfloat16_gemms_under_the_interpreter_run_torch_ops_and_say_so(monkeypatch):
    from archc.backends.triton import conv1x1, dispatch

    monkeypatch.setattr(dispatch, "_warned", set())  # said once a process: say it here
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 16, 1)
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        want = conv(x)
        got = conv1x1.layer(x.bfloat16(), conv.bfloat16())
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=5e-2)
    assert any("bfloat16 under TRITON_INTERPRET=1" in str(w.message) for w in caught)
