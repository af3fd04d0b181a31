"""archc train and archc eval on the bundled digits: accuracy, resume after SIGKILL, bad input.

Each run is a real process or the CLI in-process on the CPU; the nets are the digits-sized
ones in nets/, so a run takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT

import archc
from archc.train import checkpoint

NIN = "nets/nin_digits.arch"


def weights_of(folder):
    return checkpoint.load(checkpoint.latest(folder))["model"]


@pytest.mark.slow  # 30 epochs: under a minute, the longest test; CI runs it (make test-slow)
def test_nin_digits_reaches_97_percent_on_the_cpu(archc, tmp_path):
    status, out, err = archc("train", NIN, "--data", "digits", "--epochs", "30",
                             "--out", str(tmp_path), "--no-progress")
    assert status == 0, err
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, 31))
    assert 1 - records[-1]["test_top1_error"] >= 0.97
    assert records[-1]["train_loss"] < records[0]["train_loss"] / 5
    assert f"accuracy {1 - records[-1]['test_top1_error']:.2%}" in out
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["seed"] == 0 and "net nin_digits" in run["arch_source"]
    assert set(run["versions"]) >= {"torch", "triton", "python"}
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(checkpoint.checkpoints(tmp_path)) == 3  # --keep's default

    status, out, err = archc("eval", NIN, "--checkpoint", str(checkpoint.latest(tmp_path)),
                             "--json", "--confusion", str(tmp_path / "c.png"))
    assert status == 0, err
    figures = json.loads(out)
    assert figures["top1_error"] == pytest.approx(records[-1]["test_top1_error"])
    assert figures["samples"] == 360 and (tmp_path / "c.png").exists()


def test_a_run_killed_mid_epoch_resumes_to_bit_identical_weights(tmp_path):
    args = [sys.executable, "-m", "archc", "train", NIN, "--epochs", "2", "--batch-size", "8",
            "--save-every", "7", "--no-progress"]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    subprocess.run(args + ["--out", str(whole)], cwd=ROOT, check=True, capture_output=True)
    process = subprocess.Popen(args + ["--out", str(broken)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps_per_epoch = 180  # 1,437 training digits in batches of 8
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = checkpoint.latest(broken)
        step = int(checkpoint.PATTERN.search(found.name).group(1)) if found else 0
        if steps_per_epoch // 2 < step < steps_per_epoch:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < step < steps_per_epoch, "the run should be killed in its first epoch"
    resumed = subprocess.run(args + ["--out", str(broken)], cwd=ROOT, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr and "(epoch 1, step" in resumed.stderr
    a, b = weights_of(whole), weights_of(broken)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_flag_continues_with_the_saved_config(archc, tmp_path):
    assert archc("train", NIN, "--epochs", "1", "--out", str(tmp_path), "--no-progress",
                 "--lr", "0.02")[0] == 0
    status, out, err = archc("train", "--resume", str(tmp_path), "--epochs", "2",
                             "--no-progress")
    assert status == 0, err
    assert "resuming from" in err and "after 2 epochs" in out
    state = checkpoint.load(checkpoint.latest(tmp_path))
    assert json.loads(state["config"])["lr"] == 0.02 and state["epoch"] == 2
    status, out, err = archc("train", "--resume", str(tmp_path), "--no-progress")
    assert status == 0 and f"{tmp_path} holds a run of all 2 epochs already" in err


@pytest.mark.parametrize("args, message", [
    (["nets/nin_cifar10.arch"], "digits train images have 1 channel(s), the net takes 3 "
                                "(give --gray-to-rgb)"),
    (["nets/nin_cifar10.arch", "--gray-to-rgb"],
     "digits train images are 8x8, the net takes 32x32 (give --resize"),
    ([NIN, "--set", "classes=5"], "digits train has 10 classes, the net predicts 5 "
                                  "(give --set classes=10)"),
    ([NIN, "--data", "imagenet"], "unknown data 'imagenet': give one of digits, cifar10:DIR"),
    ([NIN, "--data", "cifar10"], "--data cifar10 needs a folder: cifar10:DIR"),
    ([NIN, "--data", "mnist:/nonexistent"], "/nonexistent: no such folder"),
    ([NIN, "--lr", "1e4", "--epochs", "2"], "the loss turned NaN or infinite in epoch 1"),
    (["--resume", "/nonexistent"], "--resume /nonexistent: no checkpoint there"),
])
def test_bad_input_gets_a_clear_error(archc, tmp_path, args, message):
    status, out, err = archc("train", *args, "--out", str(tmp_path / "run"), "--no-progress")
    assert status == 1
    assert message in err and "Traceback" not in err


def test_nan_keeps_the_last_good_checkpoint(archc, tmp_path):
    assert archc("train", NIN, "--epochs", "1", "--out", str(tmp_path), "--no-progress")[0] == 0
    good = checkpoint.latest(tmp_path)
    status, _, err = archc("train", NIN, "--epochs", "3", "--lr", "1e4", "--out",
                           str(tmp_path / "other"), "--no-progress", "--init-from", str(good))
    assert status == 1 and "NaN or infinite" in err
    assert checkpoint.latest(tmp_path) == good and checkpoint.load(good)["epoch"] == 1


def test_an_unwritable_out_fails_before_training(archc, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, err = archc("train", NIN, "--out", str(blocker / "run"), "--no-progress")
    assert status == 1 and f"cannot write to {blocker / 'run'}" in err


def test_broken_checkpoints_are_named_with_what_is_wrong(archc, tmp_path):
    assert archc("train", NIN, "--epochs", "1", "--max-steps", "2", "--out", str(tmp_path),
                 "--no-progress")[0] == 0
    good = checkpoint.latest(tmp_path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    status, _, err = archc("eval", NIN, "--checkpoint", str(truncated))
    assert status == 1 and f"{truncated}: not a readable checkpoint" in err
    status, _, err = archc("eval", "nets/inception_digits.arch", "--checkpoint", str(good))
    assert status == 1 and f"{good}: does not fit this net: '" in err and "is missing" in err
    hostile = tmp_path / "hostile.pt"
    torch.save({"model": {}, "x": os.system}, hostile)  # a pickle that names a function
    status, _, err = archc("eval", NIN, "--checkpoint", str(hostile))
    assert status == 1 and f"{hostile}: refused: it asks to run code (" in err


def test_dry_run_prints_the_plan_and_trains_nothing(archc, tmp_path):
    status, out, err = archc("train", NIN, "--dry-run", "--out", str(tmp_path))
    assert status == 0, err
    assert "steps_per_epoch         23" in out and "train_images            1,437" in out
    assert not checkpoint.checkpoints(tmp_path)


def _ranks_errors(stderr: str) -> str:
    """A failed torch.distributed.run's output: the ranks' own errors come first, the
    launcher's summary last, so both ends (these runs use --standalone: a free port each)."""
    return stderr if len(stderr) < 5000 else f"{stderr[:3000]}\n...\n{stderr[-2000:]}"


@pytest.mark.slow  # CI runs it (`make test-slow`); 10-15 s here
def test_two_process_gloo_run_trains_and_writes_one_set_of_files(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "archc", "train", NIN, "--epochs", "3", "--out", str(tmp_path), "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, _ranks_errors(result.stderr)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]  # rank 0 alone writes
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert records[-1]["test_samples"] == 360  # sharded without duplicates, then summed
    assert json.loads((tmp_path / "run.json").read_text())["world_size"] == 2
    assert result.stdout.count("after 3 epochs") == 1  # rank 0 alone reports
    assert "Grad strides" not in result.stderr


PLAIN = """net plain(classes = 10) {
    input 1x8x8
    default conv relu
    conv 3x3 16 pad=1
    conv 1x1 16
    maxpool 2x2/2
    conv 3x3 32 pad=1
    conv 1x1 classes linear
    gap
    softmax
}
"""


def test_one_ddp_step_over_two_ranks_equals_one_step_over_the_global_batch(tmp_path):
    """No dropout: the two ranks' halves of a global batch of 64, gradients averaged by DDP,
    move the weights as one process does over all 64 (fp32 summation order aside)."""
    net = tmp_path / "plain.arch"
    net.write_text(PLAIN)
    common = ["-m", "archc", "train", str(net), "--epochs", "1", "--max-steps", "1",
              "--batch-size", "64", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one")], cwd=ROOT,
                   check=True, capture_output=True, env=env)
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", *common, "--out", str(tmp_path / "two")],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, _ranks_errors(ddp.stderr)
    one, two = weights_of(tmp_path / "one"), weights_of(tmp_path / "two")
    assert checkpoint.load(checkpoint.latest(tmp_path / "two"))["global_step"] == 1
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6, msg=key)
    torch.manual_seed(0)  # the runner's init: seed, then build
    initial = archc.compile(str(net)).state_dict()
    assert all((one[k] - initial[k]).abs().max() > 1e-4 for k in one)  # the step moved all


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(archc, tmp_path, monkeypatch):
    import errno

    assert archc("train", NIN, "--epochs", "1", "--max-steps", "2", "--out", str(tmp_path),
                 "--no-progress")[0] == 0
    good = checkpoint.latest(tmp_path)
    before = good.read_bytes()

    def full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    status, _, err = archc("train", NIN, "--epochs", "2", "--out", str(tmp_path),
                           "--no-progress")
    assert status == 1
    assert "No space left on device" in err and f"{good} is intact" in err
    assert checkpoint.latest(tmp_path) == good and good.read_bytes() == before
    assert not list(tmp_path.glob(".ckpt-*"))  # no temporary file left behind


def test_resuming_into_a_folder_of_another_nets_run_is_refused(archc, tmp_path):
    assert archc("train", NIN, "--epochs", "1", "--max-steps", "2", "--out", str(tmp_path),
                 "--no-progress")[0] == 0
    status, _, err = archc("train", "nets/inception_digits.arch", "--epochs", "2", "--out",
                           str(tmp_path), "--no-progress")
    assert status == 1
    assert f"{checkpoint.latest(tmp_path)} was written by another net" in err


def test_polyak_averaging_is_what_the_run_and_eval_report(archc, tmp_path):
    status, out, err = archc("train", NIN, "--epochs", "2", "--ema", "0.9", "--out",
                             str(tmp_path), "--no-progress")
    assert status == 0, err
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    state = checkpoint.load(checkpoint.latest(tmp_path))
    assert int(state["ema"]["n_averaged"]) == 46  # every step of 2 epochs of 23
    status, out, _ = archc("eval", NIN, "--checkpoint", str(checkpoint.latest(tmp_path)),
                           "--json")
    assert json.loads(out)["top1_error"] == pytest.approx(last["test_top1_error"])


def test_training_on_the_triton_backend_moves_weights_as_the_torch_backend(archc, tmp_path):
    """Three steps in Triton's interpreter (CPU) against three on torch ops, same seed, on a
    folder of a few images (the interpreter is slow)."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 12), ("test", 4)):
        for label in ("a", "b"):
            (tmp_path / "images" / split / label).mkdir(parents=True)
            for i in range(count // 2):
                pixels = torch.randint(0, 256, (8, 8, 3), generator=generator, dtype=torch.uint8)
                Image.fromarray(pixels.numpy()).save(tmp_path / "images" / split / label /
                                                     f"{i}.png")
    net = tmp_path / "plain.arch"
    net.write_text(PLAIN.replace("1x8x8", "3x8x8").replace("classes = 10", "classes = 2"))
    for backend in ("torch", "triton"):
        status, _, err = archc("train", str(net), "--data", f"folder:{tmp_path / 'images'}",
                               "--batch-size", "4", "--epochs", "1", "--max-steps", "3",
                               "--backend", backend, "--out", str(tmp_path / backend),
                               "--no-progress")
        assert status == 0, err
    a, b = weights_of(tmp_path / "torch"), weights_of(tmp_path / "triton")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


def test_a_batch_normalised_resnet_trains_and_evaluates_with_its_running_statistics(
        archc, tmp_path):
    status, out, err = archc("train", "nets/resnet_digits.arch", "--epochs", "5", "--out",
                             str(tmp_path), "--no-progress")
    assert status == 0, err
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert 1 - last["test_top1_error"] >= 0.97
    state = checkpoint.load(checkpoint.latest(tmp_path))["model"]
    means = [v for k, v in state.items() if k.endswith("running_mean")]
    assert len(means) == 10 and all(m.abs().sum() > 0 for m in means)  # learnt, not zeros
    assert all(int(v) == 5 * 23 for k, v in state.items() if k.endswith("num_batches_tracked"))
    status, out, _ = archc("eval", "nets/resnet_digits.arch", "--checkpoint",
                           str(checkpoint.latest(tmp_path)), "--json")
    assert json.loads(out)["top1_error"] == pytest.approx(last["test_top1_error"])


@pytest.mark.slow  # CI runs it (`make test-slow`); 10-15 s here
def test_ddp_keeps_one_set_of_running_statistics(tmp_path):
    """DistributedDataParallel broadcasts rank 0's buffers at each step: the checkpoint's
    running statistics are those every rank evaluated with."""
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "archc", "train", "nets/resnet_digits.arch", "--epochs", "1", "--max-steps", "4",
         "--out", str(tmp_path), "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, _ranks_errors(result.stderr)
    state = checkpoint.load(checkpoint.latest(tmp_path))["model"]
    assert all(int(v) == 4 for k, v in state.items() if k.endswith("num_batches_tracked"))
