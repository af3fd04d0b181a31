"""CIFAR's pickles read without trusting them (archc.train.pickles): what a corrupt or hostile
batch asks for is refused with the file named, before numpy's state or the machine's memory
is touched.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from test_train_data import cifar10_folder, write_pickle

from archc.train import data
from archc.train.errors import DataError
from archc.train.pickles import unpickle


def _batch(tmp_path, raw: bytes):
    path = tmp_path / "data_batch_1"
    path.write_bytes(raw)
    return path


def test_a_dtype_state_that_would_rewrite_numpys_uint8_is_refused(tmp_path, capfd):
    """One byte of a batch's dtype state (its flags: 0 -> 1, "holds references") made C's
    unpickler rewrite numpy's one uint8 dtype; numpy then fails in every later array."""
    raw = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, protocol=2)
    flags = raw.index(b"K\x00t", raw.index(b"X\x01\x00\x00\x00|"))  # the state's last item
    path = _batch(tmp_path, raw[:flags] + b"K\x01t" + raw[flags + 3:])
    with pytest.raises(DataError, match=rf"{path}: not a CIFAR batch \(UnpicklingError: a "
                                        r"dtype uint8 given another state"):
        unpickle(path)
    assert np.zeros(4, np.uint8).sum() == 0 and np.dtype("u1").flags == 0
    assert capfd.readouterr().err == ""


def test_a_length_past_the_end_of_the_file_allocates_nothing(tmp_path):
    """`BYTEARRAY8` allocates, zeroed, the length it names; a flipped length is refused by the
    walk over the opcodes before anything runs."""
    path = _batch(tmp_path, b"\x80\x05\x96" + (1 << 40).to_bytes(8, "little") + b".")
    with pytest.raises(DataError, match=r"not a CIFAR batch \(ValueError: expected "
                                        r"1099511627776 bytes in a bytearray8, but only 1"):
        unpickle(path)


def test_an_array_of_python_objects_is_refused(tmp_path):
    write_pickle(tmp_path / "data_batch_1", {b"data": np.array([[None] * 3072], dtype=object),
                                             b"labels": [0]})
    with pytest.raises(DataError, match=r"UnpicklingError: an array of Python objects"):
        unpickle(tmp_path / "data_batch_1")


def test_an_array_larger_than_its_file_is_refused(tmp_path):
    raw = pickle.dumps({"data": np.zeros((0,), np.uint8)}, protocol=2)
    shape = raw.index(b"K\x00\x85")  # _reconstruct(ndarray, (0,), 'b'): its shape
    path = _batch(tmp_path, raw[:shape] + b"J" + (1 << 30).to_bytes(4, "little") + raw[shape + 2:])
    with pytest.raises(DataError, match=r"an array \(1073741824,\) larger than the file"):
        unpickle(path)


def test_an_honest_batch_reads_as_the_c_unpickler_reads_it(tmp_path):
    root = cifar10_folder(tmp_path)
    ours = unpickle(root / "data_batch_1")
    with open(root / "data_batch_1", "rb") as f:
        theirs = pickle.load(f, encoding="latin1")
    assert ours.keys() == theirs.keys() and ours[b"labels"] == theirs[b"labels"]
    assert np.array_equal(ours[b"data"], theirs[b"data"]) and ours[b"data"].dtype == np.uint8
    train, _ = data.load(f"cifar10:{root}")
    assert train.images.shape == (15, 3, 32, 32)
