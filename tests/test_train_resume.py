"""A run folder holds one run (issue 20): options and net fixed on resume, a lock, run.json's
history, one metrics row an epoch, --max-steps that stops and lifts, options checked at parse
time, outputs checked before the work.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import ROOT

from archc.train import checkpoint
from archc.train.resume import FolderLock

NIN = "nets/nin_digits.arch"
QUICK = ["--no-progress", "--batch-size", "128"]  # 12 steps an epoch on the digits


def rows(folder) -> list[int]:
    return [json.loads(line)["epoch"] for line in
            (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_resumed_run_refuses_other_options_and_takes_epochs(archc, tmp_path):
    assert archc("train", NIN, "--epochs", "1", "--out", str(tmp_path), *QUICK)[0] == 0
    status, out, err = archc("train", "--resume", str(tmp_path), "--lr", "5", "--seed", "7",
                             "--no-progress")
    assert status == 1
    assert (f"{tmp_path} holds a run with other options: --lr 5.0 (the run's: 0.05); --seed 7 "
            "(the run's: 0). A resumed run keeps its options") in err
    status, out, err = archc("train", NIN, "--epochs", "2", "--out", str(tmp_path), "--lr", "5",
                             *QUICK)  # the same --out, another lr: the same refusal
    assert status == 1 and "--lr 5.0 (the run's: 0.05)" in err
    status, out, err = archc("train", "--resume", str(tmp_path), "--epochs", "2", "--no-progress")
    assert status == 0, err
    assert rows(tmp_path) == [1, 2]


def test_a_changed_net_is_refused(archc, tmp_path):
    net = tmp_path / "net.arch"
    net.write_text((ROOT / NIN).read_text())
    shutil.copytree(ROOT / "nets" / "lib", tmp_path / "lib")
    out = tmp_path / "run"
    assert archc("train", str(net), "--epochs", "1", "--max-steps", "2", "--out", str(out),
                 *QUICK)[0] == 0
    net.write_text(net.read_text().replace("dropout 0.25", "dropout 0.3"))
    status, _, err = archc("train", str(net), "--epochs", "1", "--out", str(out), *QUICK)
    assert status == 1
    assert f"{checkpoint.latest(out)} was written by another net (the .arch file changed" in err


def test_run_json_keeps_every_start_and_a_lost_epoch_row_is_not_repeated(archc, tmp_path):
    assert archc("train", NIN, "--epochs", "2", "--out", str(tmp_path), *QUICK)[0] == 0
    first = json.loads((tmp_path / "run.json").read_text())
    # A kill between epoch 2's metrics row and its checkpoint: the row is there, the
    # checkpoint not.
    checkpoint.latest(tmp_path).unlink()
    assert rows(tmp_path) == [1, 2]
    status, _, err = archc("train", NIN, "--epochs", "2", "--out", str(tmp_path), *QUICK)
    assert status == 0, err
    assert rows(tmp_path) == [1, 2]  # epoch 2 trained again, and one row for it
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["command"] == first["command"] and run["cwd"] == str(ROOT)
    assert [s["resumed_from"] is None for s in run["starts"]] == [True, False]


def test_one_run_at_a_time_in_a_folder(archc, tmp_path):
    with FolderLock(tmp_path):
        status, _, err = archc("train", NIN, "--epochs", "1", "--out", str(tmp_path), *QUICK)
    assert status == 1
    assert f"{tmp_path} is in use by another archc train (pid {os.getpid()})" in err
    assert not checkpoint.checkpoints(tmp_path)


def test_resume_from_another_folder_finds_the_net(archc, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert archc("train", NIN, "--epochs", "1", "--max-steps", "2", "--out", str(out),
                 *QUICK)[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    from archc.cli.main import main

    assert main(["train", "--resume", str(out), "--max-steps", "0", "--no-progress"]) == 0
    assert rows(out) == [1]


def test_max_steps_stops_mid_epoch_and_zero_lifts_it(archc, tmp_path):
    status, _, err = archc("train", NIN, "--epochs", "2", "--max-steps", "5", "--out",
                           str(tmp_path), *QUICK)
    assert status == 0 and "stopped by --max-steps after 5 steps, in epoch 1 (step 5)" in err
    assert not (tmp_path / "metrics.jsonl").exists()  # no epoch finished
    status, _, err = archc("train", "--resume", str(tmp_path), "--no-progress")
    assert status == 0 and "stopped by --max-steps after 5 steps" in err
    assert not (tmp_path / "metrics.jsonl").exists()  # no empty epoch added
    status, _, err = archc("train", "--resume", str(tmp_path), "--max-steps", "0",
                           "--no-progress")
    assert status == 0, err
    assert rows(tmp_path) == [1, 2]
    assert checkpoint.load(checkpoint.latest(tmp_path))["global_step"] == 24


@pytest.mark.parametrize("flag, value, message", [
    ("--batch-size", "0", "expected an integer >= 1, got 0"),
    ("--batch-size", "-5", "expected an integer >= 1, got -5"),
    ("--step-size", "0", "expected a number in (0, inf), got 0"),
    ("--crop-pad", "-3", "expected an integer >= 0, got -3"),
    ("--label-smoothing", "5", "expected a number in [0, 1), got 5"),
    ("--epochs", "0", "expected an integer >= 1, got 0"),
    ("--keep", "0", "expected an integer >= 1, got 0"),
    ("--scale-crop", "2,1", "expected MIN,MAX with 0 < MIN <= MAX <= 1"),
    ("--warmup", "-1", "expected a number in [0, inf), got -1"),
    ("--lr", "nan", "expected a number in (0, inf), got nan"),
    ("--momentum", "1", "expected a number in [0, 1), got 1"),
])
def test_bad_option_values_are_refused_with_their_range(archc, tmp_path, flag, value, message):
    status, _, err = archc("train", NIN, flag, value, "--out", str(tmp_path), "--no-progress")
    assert status == 2 and message in err and flag in err
    assert not list(tmp_path.iterdir())


def test_cuda_without_a_device_is_a_message(archc, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    status, _, err = archc("train", NIN, "--device", "cuda", "--out", str(tmp_path),
                           "--no-progress")
    assert status == 1 and "--device cuda: no CUDA device here (use --device cpu)" in err


def test_outputs_in_unwritable_folders_fail_before_the_work(archc, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        status, _, err = archc("graph", "nets/googlenet.arch", "-o", str(locked / "g.dot"))
        assert status == 2 and f"cannot write {locked / 'g.dot'}: permission denied" in err
        status, _, err = archc("eval", NIN, "--checkpoint", str(tmp_path / "none.pt"),
                               "--confusion", str(locked / "c.png"))
        assert status == 1 and "its folder is missing or not writable" in err
    finally:
        locked.chmod(0o700)


def test_train_without_a_file_says_what_to_give(archc):
    status, _, err = archc("train", "--no-progress")
    assert status == 1 and "give an .arch FILE to train (or --resume DIR)" in err


def test_resume_names_the_folder_and_refuses_another_net(archc, tmp_path):
    """Issue 35: `--resume ckpt-....pt` said 'no checkpoint there'; `archc train OTHER.arch
    --resume DIR` silently resumed DIR's net."""
    assert archc("train", NIN, "--epochs", "1", "--out", str(tmp_path), *QUICK)[0] == 0
    newest = checkpoint.latest(tmp_path)
    status, out, err = archc("train", "--resume", str(newest), "--no-progress")
    assert status == 1
    assert f"--resume {newest} is a file: give the run's folder (--resume {tmp_path})" in err
    status, out, err = archc("train", "nets/resnet_digits.arch", "--resume", str(tmp_path),
                             "--epochs", "2", "--no-progress")
    assert status == 1
    assert f"--resume {tmp_path} continues its run of {NIN}, not nets/resnet_digits.arch" in err
    assert rows(tmp_path) == [1]
    status, out, err = archc("train", NIN, "--resume", str(tmp_path), "--epochs", "2",
                             "--no-progress")  # its own net: fine
    assert status == 0, err
    assert rows(tmp_path) == [1, 2]
