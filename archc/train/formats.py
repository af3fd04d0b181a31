"""Readers of the data sets' real on-disk formats, each to `(images, labels, class names)`.

Images come back as a uint8 array [N, C, H, W], labels as int64 [N]. Every reader checks what
it reads and raises `DataError` naming the file and what is wrong with it.

- digits: scikit-learn's bundled 8x8 scans (17 grey levels, scaled to 0..255);
- CIFAR-10 / CIFAR-100: the python pickle batches, read without trusting them
  (archc.train.pickles: no code runs, nor can a corrupt pickle ask for unbounded memory);
- MNIST / Fashion-MNIST: IDX files, gzipped or not;
- SVHN: the `train_32x32.mat` / `test_32x32.mat` files (label 10 is the digit 0);
- an image folder: `DIR/<class>/<image>`, decoded with Pillow.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from archc.files import irregular
from archc.train.errors import DataError
from archc.train.pickles import unpickle

Arrays = tuple[np.ndarray, np.ndarray, list[str]]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def checked(images: np.ndarray, labels, classes: list[str], where: Path | str) -> Arrays:
    """`images` as uint8 [N, C, H, W] and `labels` as int64 [N], or DataError naming `where`
    and what is wrong: counts that differ, labels that are not whole numbers in
    [0, len(classes)), pixel values that are not whole numbers in 0..255. Every reader
    ends here, so no set trains with an image paired with another's label, or wrapped."""
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError) as error:
        raise DataError(f"{where}: labels are not a list of numbers ({error})") from None
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or
                                np.issubdtype(labels.dtype, np.bool_)):
        raise DataError(f"{where}: labels must be whole numbers, one an image; got "
                        f"{labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise DataError(f"{where}: label {bad} is outside the {len(classes)} classes "
                        f"(0..{len(classes) - 1})")
    return _pixels(images, where), labels.astype(np.int64), classes


def _pixels(images: np.ndarray, where: Path | str) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.number) or \
            np.issubdtype(images.dtype, np.complexfloating):
        raise DataError(f"{where}: pixels are {images.dtype}, not numbers 0..255")
    if images.size and (not np.all(np.isfinite(images)) or images.min() < 0 or
                        images.max() > 255 or np.any(images != np.round(images))):
        raise DataError(f"{where}: pixels must be whole numbers 0..255 (uint8); found values "
                        f"in {images.min()}..{images.max()} of {images.dtype}")
    return images.astype(np.uint8)


def digits() -> Arrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    return images, bunch.target.astype(np.int64), [str(d) for d in range(10)]


# ---- CIFAR ---------------------------------------------------------------------------------


def _batch(path: Path) -> dict:
    batch = unpickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR batch (a {type(batch).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def cifar(root: Path, split: str, hundred: bool) -> Arrays:
    names = (["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]) \
        if split == "train" else ["test" if hundred else "test_batch"]
    label_key = "fine_labels" if hundred else "labels"
    images, labels = [], []
    meta_path = root / ("meta" if hundred else "batches.meta")
    meta = _batch(meta_path)
    classes = meta.get("fine_label_names" if hundred else "label_names")
    if not isinstance(classes, list) or not classes:
        raise DataError(f"{meta_path}: no list of class names")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in classes]
    for name in names:
        batch = _batch(root / name)
        data = batch.get("data")
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or \
                label_key not in batch:
            raise DataError(f"{root / name}: expected 'data' N x 3072 and '{label_key}'")
        batch_images, batch_labels, _ = checked(data.reshape(-1, 3, 32, 32), batch[label_key],
                                                classes, root / name)
        images.append(batch_images)
        labels.append(batch_labels)
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
    if rank == 0 or len(raw) < 4 + 4 * rank:
        raise DataError(f"{path}: the IDX header is cut short ({len(raw)} bytes for "
                        f"{rank} sizes)")
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
    if not len(labels):
        raise DataError(f"{root}: the {prefix} files hold no images")
    return checked(images[:, None], labels, [str(d) for d in range(10)],
                   root / f"{prefix}-labels-idx1-ubyte")


# ---- SVHN ----------------------------------------------------------------------------------


def svhn(root: Path, split: str) -> Arrays:
    from scipy.io import loadmat

    path = root / f"{split}_32x32.mat"
    if not path.exists():  # scipy reports a missing file as an unreadable one
        raise DataError(f"{path}: no such file (SVHN's {split}_32x32.mat)")
    if (kind := irregular(path)) is not None:
        raise DataError(f"{path}: it is {kind}, not a MATLAB file")
    try:
        mat = loadmat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as error:  # a cut or flipped file fails in many ways
        # (IndexError, found by the fuzz test); scipy only reads arrays, so it is the bytes
        raise DataError(f"{path}: not a MATLAB file ({type(error).__name__}: {error})") from None
    x, y = mat.get("X"), mat.get("y")
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray) or x.ndim != 4 or \
            x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
        raise DataError(f"{path}: expected X 32x32x3xN and y Nx1")
    labels = y.reshape(-1)
    if labels.size and (not np.issubdtype(labels.dtype, np.number) or labels.min() < 1 or
                        labels.max() > 10 or np.any(labels != np.round(labels))):
        raise DataError(f"{path}: labels must be the digits 1..10 (10 is the digit 0)")
    labels = labels.astype(np.int64) % 10  # SVHN writes the digit 0 as 10
    return checked(np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels,
                   [str(d) for d in range(10)], path)


# ---- image folders -------------------------------------------------------------------------


def folder_classes(train: Path, test: Path) -> tuple[list[str], list[str]]:
    """The class list of an image folder set: the class folders of both splits, sorted, so a
    label means one class in both (numbered apart, an extra folder in one split shifted every
    label of the other). Also the classes found in one split only, for a warning."""
    for root in (train, test):
        if not root.is_dir():
            raise DataError(f"{root}: no such folder")
    found = [{p.name for p in root.iterdir() if p.is_dir()} for root in (train, test)]
    classes = sorted(found[0] | found[1])
    if not classes:
        raise DataError(f"{train}: no class folders (expected {train}/<class>/<image>)")
    return classes, sorted(found[0] ^ found[1])


def _eight_bit(image, path: Path):
    """A 16-bit grayscale image scaled to 8 bits (Pillow's `convert` would clip every value
    above 255 to white); one of more bits or of floats refused, naming the file."""
    from PIL import Image

    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise DataError(f"{path}: {image.mode} pixels beyond 16 bits; archc reads 8- and "
                            "16-bit images (convert it)")
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    if image.mode == "F":
        raise DataError(f"{path}: floating-point pixels; archc reads 8- and 16-bit images "
                        "(convert it)")
    return image


def folder(root: Path, classes: list[str], size: tuple[int, int] | None = None) -> Arrays:
    """`root/<class>/<image>` for the classes given (label = position in `classes`; a class
    may be absent from this split); every image the size of the first, or resized to `size`
    (H, W) as it is decoded. A class folder without images is an error."""
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(classes):
        if not (root / name).is_dir():
            continue
        paths = [p for p in sorted((root / name).iterdir())
                 if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        if not paths:
            raise DataError(f"{root / name}: a class folder without images (remove it, or add "
                            "its images)")
        for path in paths:
            try:
                with Image.open(path) as image:
                    image = _eight_bit(image, path).convert("RGB")
                    if size is not None:
                        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    array = np.asarray(image)
            except Image.DecompressionBombError as error:
                raise DataError(f"{path}: too large to decode safely ({error})") from None
            except Exception as error:  # Pillow's decoders raise
                # many kinds (OSError, SyntaxError, struct.error) on damaged bytes
                raise DataError(f"{path}: cannot decode the image ({error})") from None
            if images and array.shape != images[0].shape:
                raise DataError(f"{path}: {array.shape[1]}x{array.shape[0]} pixels, the first "
                                f"image was {images[0].shape[1]}x{images[0].shape[0]}; "
                                "give --resize to resize every image to the net's input")
            images.append(array)
            labels.append(label)
    if not images:
        raise DataError(f"{root}: no images in the class folders")
    return checked(np.stack(images).transpose(0, 3, 1, 2).copy(), np.array(labels), classes,
                   root)
