"""Readers of the data sets' real on-disk formats, each to `(images, labels, class names)`.

Images come back as a uint8 array [N, C, H, W], labels as int64 [N]. Every reader checks what
it reads and raises `DataError` naming the file and what is wrong with it.

- digits: scikit-learn's bundled 8x8 scans (17 grey levels, scaled to 0..255);
- CIFAR-10 / CIFAR-100: the python pickle batches, read by an unpickler that admits numpy's
  array reconstruction and nothing else (a hostile pickle cannot run code);
- MNIST / Fashion-MNIST: IDX files, gzipped or not;
- SVHN: the `train_32x32.mat` / `test_32x32.mat` files (label 10 is the digit 0);
- an image folder: `DIR/<class>/<image>`, decoded with Pillow.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


class DataError(Exception):
    """Data that cannot be read, or does not fit the net: a user's mistake, no traceback."""


Arrays = tuple[np.ndarray, np.ndarray, list[str]]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def digits() -> Arrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    return images, bunch.target.astype(np.int64), [str(d) for d in range(10)]


# ---- CIFAR ---------------------------------------------------------------------------------


class _ArraysOnly(pickle.Unpickler):
    """Admits the globals a CIFAR batch needs (numpy arrays and dtypes) and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
               "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("_codecs", "encode")}  # how Python 3 writes bytes into a protocol-2 pickle

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise DataError(f"{path}: not a CIFAR batch ({error})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR batch (a {type(batch).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def cifar(root: Path, split: str, hundred: bool) -> Arrays:
    names = (["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]) \
        if split == "train" else ["test" if hundred else "test_batch"]
    label_key = "fine_labels" if hundred else "labels"
    images, labels = [], []
    for name in names:
        batch = _unpickle(root / name)
        data = np.asarray(batch.get("data"))
        if data.ndim != 2 or data.shape[1] != 3072 or label_key not in batch:
            raise DataError(f"{root / name}: expected 'data' N x 3072 and '{label_key}'")
        images.append(data.reshape(-1, 3, 32, 32).astype(np.uint8))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    meta = _unpickle(root / ("meta" if hundred else "batches.meta"))
    classes = meta.get("fine_label_names" if hundred else "label_names") or []
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in classes]
    return np.concatenate(images), np.concatenate(labels), classes


# ---- MNIST ---------------------------------------------------------------------------------


def idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format): magic 0 0 8 <rank>, then the sizes, then uint8 data."""
    path = path if path.exists() or not path.with_suffix(path.suffix + ".gz").exists() \
        else path.with_suffix(path.suffix + ".gz")
    try:
        raw = path.read_bytes()
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable gzip file ({error})") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise DataError(f"{path}: not an IDX file of uint8 (magic {raw[:4].hex()})")
    rank = raw[3]
    sizes = struct.unpack(f">{rank}I", raw[4:4 + 4 * rank])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * rank)
    if data.size != int(np.prod(sizes)):
        raise DataError(f"{path}: header says {'x'.join(map(str, sizes))}, file holds "
                        f"{data.size} bytes of data (truncated?)")
    return data.reshape(sizes)


def mnist(root: Path, split: str) -> Arrays:
    prefix = "train" if split == "train" else "t10k"
    images = idx(root / f"{prefix}-images-idx3-ubyte")
    labels = idx(root / f"{prefix}-labels-idx1-ubyte").astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{root}: {prefix} images {images.shape} and labels {labels.shape} "
                        "do not pair up")
    return images[:, None], labels, [str(d) for d in range(10)]


# ---- SVHN ----------------------------------------------------------------------------------


def svhn(root: Path, split: str) -> Arrays:
    from scipy.io import loadmat

    path = root / f"{split}_32x32.mat"
    try:
        mat = loadmat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, TypeError, OSError) as error:
        raise DataError(f"{path}: not a MATLAB file ({error})") from None
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: expected X 32x32x3xN and y Nx1")
    labels = y.reshape(-1).astype(np.int64) % 10  # SVHN writes the digit 0 as 10
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels, [str(d) for d in range(10)]


# ---- image folders -------------------------------------------------------------------------


def folder(root: Path, size: tuple[int, int] | None = None) -> Arrays:
    """`root/<class>/<image>`: classes in sorted order; every image the size of the first,
    or resized to `size` (H, W) as it is decoded."""
    from PIL import Image, UnidentifiedImageError

    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/<image>)")
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as image:
                    image = image.convert("RGB")
                    if size is not None:
                        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    array = np.asarray(image)
            except (UnidentifiedImageError, OSError) as error:
                raise DataError(f"{path}: cannot decode the image ({error})") from None
            if images and array.shape != images[0].shape:
                raise DataError(f"{path}: {array.shape[1]}x{array.shape[0]} pixels, the first "
                                f"image was {images[0].shape[1]}x{images[0].shape[0]}; "
                                "give --resize HxW")
            images.append(array)
            labels.append(label)
    if not images:
        raise DataError(f"{root}: no images in the class folders")
    return np.stack(images).transpose(0, 3, 1, 2).copy(), np.array(labels), classes
