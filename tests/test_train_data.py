"""The data sets' real on-disk formats, written tiny here and read back by archc.train.

Each test writes files as the data sets ship them (pickled CIFAR batches, gzipped IDX, SVHN's
.mat, a folder of PNG and JPEG files) and checks pixels, labels and class names, and the
errors a broken or hostile file gets.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from archc.train import data
from archc.train.errors import DataError


def write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def cifar10_folder(root, per_batch=3):
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_pickle(root / name, {b"batch_label": name.encode(),
                                   b"data": rng.randint(0, 256, (per_batch, 3072), np.uint8),
                                   b"labels": list(rng.randint(0, 10, per_batch))})
    write_pickle(root / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return root


def test_cifar10_batches_read_as_planes_of_red_green_blue(tmp_path):
    root = cifar10_folder(tmp_path)
    train, test = data.load(f"cifar10:{root}")
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    with open(root / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="bytes")
    row = first[b"data"][0]
    assert torch.equal(train.images[0, 0], torch.from_numpy(row[:1024].reshape(32, 32)))
    assert torch.equal(train.images[0, 2], torch.from_numpy(row[2048:].reshape(32, 32)))
    assert train.labels[:3].tolist() == first[b"labels"]
    assert train.classes == tuple(f"c{i}" for i in range(10))


def test_cifar100_reads_the_fine_labels(tmp_path):
    rng = np.random.RandomState(1)
    for name in ("train", "test"):
        write_pickle(tmp_path / name, {"data": rng.randint(0, 256, (4, 3072), np.uint8),
                                       "fine_labels": [0, 99, 5, 7], "coarse_labels": [0] * 4})
    write_pickle(tmp_path / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})
    train, _ = data.load(f"cifar100:{tmp_path}")
    assert train.labels.tolist() == [0, 99, 5, 7] and len(train.classes) == 100


class Hostile:
    def __reduce__(self):
        return os.system, ("touch PWNED",)


def test_a_hostile_cifar_pickle_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = cifar10_folder(tmp_path)
    write_pickle(root / "data_batch_3", {b"data": Hostile(), b"labels": []})
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR batch \(UnpicklingError: "
                                        r"refusing to load "
                                        r"(posix|os|nt)\.system\)"):
        data.load(f"cifar10:{root}")
    assert not (tmp_path / "PWNED").exists()


def idx_bytes(array: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I",
                                                                  *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("zipped", [True, False])
def test_mnist_idx_files_gzipped_or_not(tmp_path, zipped):
    rng = np.random.RandomState(2)
    for prefix, n in (("train", 5), ("t10k", 2)):
        images, labels = rng.randint(0, 256, (n, 28, 28)), rng.randint(0, 10, n)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images),
                            (f"{prefix}-labels-idx1-ubyte", labels)):
            raw = idx_bytes(array)
            if zipped:
                (tmp_path / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (tmp_path / name).write_bytes(raw)
        if prefix == "train":
            want_images, want_labels = images, labels
    train, test = data.load(f"fashion-mnist:{tmp_path}")
    assert train.images.shape == (5, 1, 28, 28) and len(test) == 2
    assert torch.equal(train.images[:, 0], torch.from_numpy(want_images.astype(np.uint8)))
    assert train.labels.tolist() == want_labels.tolist()


def test_a_truncated_idx_file_says_so(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((5, 28, 28)))[:-100])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5)))
    with pytest.raises(DataError, match="header says 5x28x28, file holds 3820 bytes"):
        data.load(f"mnist:{tmp_path}")


def test_svhn_mat_files_with_ten_for_the_digit_zero(tmp_path):
    from scipy.io import savemat

    rng = np.random.RandomState(3)
    for split, n in (("train", 4), ("test", 2)):
        x = rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8)
        labels = np.array([[10], [3], [1], [10]][:n])
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": labels})
        if split == "train":
            want = x
    train, test = data.load(f"svhn:{tmp_path}")
    assert train.labels.tolist() == [0, 3, 1, 0] and len(test) == 2
    second = want[:, :, :, 1].transpose(2, 0, 1).copy()  # H x W x C -> C x H x W
    assert torch.equal(train.images[1], torch.from_numpy(second))


def image_folder(root, size=(6, 5)):
    from PIL import Image

    rng = np.random.RandomState(4)
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            for i, suffix in enumerate((".png", ".jpg")):
                pixels = rng.randint(0, 256, (size[0], size[1], 3)).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}{suffix}")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return root


def test_an_image_folder_decoded_with_pillow(tmp_path):
    from PIL import Image

    root = image_folder(tmp_path)
    train, test = data.load(f"folder:{root}")
    assert train.images.shape == (4, 3, 6, 5) and train.classes == ("cat", "dog")
    assert train.labels.tolist() == [0, 0, 1, 1]
    png = np.asarray(Image.open(root / "train" / "cat" / "0.png"))
    assert torch.equal(train.images[0], torch.from_numpy(png.transpose(2, 0, 1).copy()))
    resized, _ = data.load(f"folder:{root}", size=(8, 8))
    assert resized.images.shape == (4, 3, 8, 8)


def test_images_of_different_sizes_ask_for_resize(tmp_path):
    from PIL import Image

    root = image_folder(tmp_path)
    Image.new("RGB", (7, 7)).save(root / "train" / "dog" / "big.png")
    with pytest.raises(DataError, match="big.png: 7x7 pixels, the first image was 5x6; give "
                                        "--resize"):
        data.load(f"folder:{root}")
    (root / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png: cannot decode the image"):
        data.load(f"folder:{root}", size=(4, 4))


def test_augmentation_is_a_function_of_seed_epoch_and_batch():
    train, _ = data.load("digits")
    mean, std = data.statistics(train)
    index = torch.arange(16)
    augment = data.Augment(crop_pad=2, flip=True, scale_crop=(0.5, 1.0))
    a = data.make_batch(train, index, mean, std, augment, seed=1, epoch=2, batch=3)[0]
    b = data.make_batch(train, index, mean, std, augment, seed=1, epoch=2, batch=3)[0]
    c = data.make_batch(train, index, mean, std, augment, seed=1, epoch=2, batch=4)[0]
    plain = data.make_batch(train, index, mean, std, None, seed=1, epoch=2, batch=3)[0]
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == plain.shape == (16, 1, 8, 8)
    orders = [torch.cat([i for _, i in data.batches(train, 100, 0, epoch, True)])
              for epoch in (0, 0, 1)]
    assert torch.equal(orders[0], orders[1]) and not torch.equal(orders[0], orders[2])
    assert sorted(orders[0].tolist()) == list(range(len(train)))


def test_shards_of_two_ranks_cover_the_test_split_once():
    _, test = data.load("digits")
    shards = [torch.cat([i for _, i in data.batches(test, 64, 0, 0, False, r, 2)])
              for r in (0, 1)]
    assert sorted(torch.cat(shards).tolist()) == list(range(len(test)))


def test_mnist_files_train_a_digits_net_with_resize(archc, tmp_path):
    rng = np.random.RandomState(5)
    for prefix, n in (("train", 64), ("t10k", 16)):
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(
            idx_bytes(rng.randint(0, 256, (n, 28, 28))))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(
            idx_bytes(rng.randint(0, 10, n)))
    status, out, err = archc("train", "nets/nin_digits.arch", "--data", f"mnist:{tmp_path}",
                             "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress")
    assert status == 1 and "images are 28x28, the net takes 8x8 (give --resize" in err
    status, out, err = archc("train", "nets/nin_digits.arch", "--data", f"mnist:{tmp_path}",
                             "--resize", "--epochs", "1", "--out", str(tmp_path / "run"),
                             "--no-progress")
    assert status == 0, err
    assert "after 1 epochs" in out
