"""Bad data sets (issue 20): every reader validates what it reads before training starts, and
names the file and what is wrong; nothing trains on images paired with the wrong labels.
"""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_train_data import cifar10_folder, idx_bytes, image_folder, write_pickle

from archc.train import data
from archc.train.errors import DataError


def test_an_image_folder_numbers_classes_alike_in_both_splits(tmp_path, capsys):
    """An extra `train/aardvark/` shifted every test label by one (test error 100%)."""
    from PIL import Image

    root = image_folder(tmp_path)
    (root / "train" / "aardvark").mkdir()
    Image.new("RGB", (5, 6)).save(root / "train" / "aardvark" / "0.png")
    train, test = data.load(f"folder:{root}")
    assert train.classes == test.classes == ("aardvark", "cat", "dog")
    assert train.labels.tolist() == [0, 1, 1, 2, 2] and test.labels.tolist() == [1, 1, 2, 2]
    assert capsys.readouterr().err == (f"archc: warning: {root}: classes in one split only: "
                                       "aardvark (labels still agree: one class list for both)\n")


def test_an_empty_class_folder_is_an_error(tmp_path):
    root = image_folder(tmp_path)
    (root / "train" / "aardvark").mkdir()
    with pytest.raises(DataError, match=r"train/aardvark: a class folder without images"):
        data.load(f"folder:{root}")


def test_a_decompression_bomb_is_refused(tmp_path, monkeypatch):
    from PIL import Image

    root = image_folder(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 6x5 = 30 pixels: over twice the limit
    with pytest.raises(DataError, match=r"0.png: too large to decode safely"):
        data.load(f"folder:{root}")


@pytest.mark.parametrize("labels, message", [
    ([1, 2, 3], "data_batch_2: 10 images but 3 labels"),
    ([-1] * 10, "data_batch_2: label -1 is outside the 10 classes (0..9)"),
    ([10] * 10, "data_batch_2: label 10 is outside the 10 classes (0..9)"),
    (["cat"] * 10, "data_batch_2: labels must be whole numbers"),
    ([0.5] * 10, "data_batch_2: labels must be whole numbers"),
])
def test_cifar_labels_are_checked(tmp_path, labels, message):
    root = cifar10_folder(tmp_path)
    write_pickle(root / "data_batch_2", {b"data": np.zeros((10, 3072), np.uint8),
                                         b"labels": labels})
    with pytest.raises(DataError) as error:
        data.load(f"cifar10:{root}")
    assert str(error.value).startswith(f"{root}/{message}")


@pytest.mark.parametrize("pixels, message", [
    (np.full((2, 3072), 1000.7), "pixels must be whole numbers 0..255 (uint8); found values in "
                                 "1000.7..1000.7 of float64"),
    (np.full((2, 3072), -1, np.int16), "pixels must be whole numbers 0..255"),
])
def test_cifar_pixels_are_not_wrapped_into_uint8(tmp_path, pixels, message):
    root = cifar10_folder(tmp_path)
    write_pickle(root / "test_batch", {b"data": pixels, b"labels": [0, 1]})
    with pytest.raises(DataError, match=re.escape(f"test_batch: {message}")):
        data.load(f"cifar10:{root}")


def test_cifar_pixels_stored_wider_but_in_range_are_read(tmp_path):
    root = cifar10_folder(tmp_path)
    write_pickle(root / "test_batch", {b"data": np.full((2, 3072), 200, np.int32),
                                       b"labels": [0, 1]})
    _, test = data.load(f"cifar10:{root}")
    assert test.images.dtype.is_floating_point is False and int(test.images.max()) == 200


def test_a_cut_idx_header_names_the_file(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5)))
    with pytest.raises(DataError, match="train-images-idx3-ubyte: the IDX header is cut short"):
        data.load(f"mnist:{tmp_path}")


def test_an_empty_svhn_file_names_the_file(tmp_path):
    (tmp_path / "train_32x32.mat").write_bytes(b"")
    with pytest.raises(DataError, match="train_32x32.mat: not a MATLAB file"):
        data.load(f"svhn:{tmp_path}")


def test_svhn_labels_outside_one_to_ten_are_refused(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8),
                                           "y": np.array([[0], [11]])})
    with pytest.raises(DataError, match="labels must be the digits 1..10"):
        data.load(f"svhn:{tmp_path}")


# ---- any corruption: an error that names a file, or data that passed every check --------

CORRUPT = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])


def _corrupt(raw: bytes, data_: st.DataObject) -> bytes:
    for _ in range(data_.draw(st.integers(1, 4))):
        kind = data_.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data_.draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw = raw[:at] + bytes([raw[at] ^ data_.draw(st.integers(1, 255))]) + raw[at + 1:]
        elif kind == "cut":
            raw = raw[:at]
        else:
            raw = raw[:at] + data_.draw(st.binary(max_size=8)) + raw[at:]
    return raw


def _loads_or_says_which_file(spec: str, root) -> None:
    try:
        train, test = data.load(spec)
    except DataError as error:
        assert str(root) in str(error)
        return
    for split in (train, test):  # what was accepted is consistent
        assert len(split.images) == len(split.labels)
        assert split.labels.min() >= 0 and split.labels.max() < len(split.classes)


@CORRUPT
@given(st.sampled_from(["data_batch_1", "test_batch", "batches.meta"]), st.data())
def test_corrupt_cifar_files(tmp_path_factory, name, data_):
    root = cifar10_folder(tmp_path_factory.mktemp("cifar"))
    (root / name).write_bytes(_corrupt((root / name).read_bytes(), data_))
    _loads_or_says_which_file(f"cifar10:{root}", root)


@CORRUPT
@given(st.sampled_from(["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]),
       st.booleans(), st.data())
def test_corrupt_idx_files(tmp_path_factory, name, zipped, data_):
    root = tmp_path_factory.mktemp("mnist")
    rng = np.random.RandomState(0)
    for prefix, n in (("train", 5), ("t10k", 2)):
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(
            idx_bytes(rng.randint(0, 256, (n, 28, 28))))
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(rng.randint(0, 10, n)))
    raw = _corrupt((root / name).read_bytes(), data_)
    (root / name).write_bytes(gzip.compress(raw) if zipped else raw)
    _loads_or_says_which_file(f"mnist:{root}", root)


@CORRUPT
@given(st.data())
def test_corrupt_svhn_files(tmp_path_factory, data_):
    from scipy.io import savemat

    root = tmp_path_factory.mktemp("svhn")
    rng = np.random.RandomState(0)
    for split, n in (("train", 3), ("test", 2)):
        savemat(root / f"{split}_32x32.mat", {"X": rng.randint(0, 256, (32, 32, 3, n)).astype(
            np.uint8), "y": rng.randint(1, 11, (n, 1))})
    path = root / "train_32x32.mat"
    path.write_bytes(_corrupt(path.read_bytes(), data_))
    _loads_or_says_which_file(f"svhn:{root}", root)


@CORRUPT
@given(st.sampled_from(["0.png", "1.jpg"]), st.data())
def test_corrupt_images(tmp_path_factory, name, data_):
    root = image_folder(tmp_path_factory.mktemp("images"))
    path = root / "train" / "dog" / name
    path.write_bytes(_corrupt(path.read_bytes(), data_))
    _loads_or_says_which_file(f"folder:{root}", root)
