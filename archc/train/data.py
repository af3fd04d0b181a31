"""Data: a `--data SPEC` -> train and test `Split`s matching the net's input, and their batches.

SPEC is `digits` (the bundled default), `cifar10:DIR`, `cifar100:DIR`, `mnist:DIR`,
`fashion-mnist:DIR`, `svhn:DIR` or `folder:DIR` (DIR/train/<class>/..., DIR/test/<class>/...).
Data that does not match the net's declared input is refused with what to do (`--resize HxW`,
`--gray-to-rgb`, `--set classes=N`); nothing is reshaped unless asked.

A split lives in memory as uint8 [N, C, H, W] (the whole of these sets fits), is moved to the
device once, and is augmented a batch at a time with torch ops. The sample order and every
random crop and flip are a pure function of (seed, epoch, batch), each drawn from its own
`torch.Generator`: a resumed run skips the batches it has done and sees the same data after.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from archc.train import formats
from archc.train.errors import DataError

KINDS = ("digits", "cifar10", "cifar100", "mnist", "fashion-mnist", "svhn", "folder")


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> Split:
        return Split(self.images.to(device), self.labels.to(device), self.classes)


@dataclass(frozen=True)
class Augment:
    """The random transforms of training batches (none at evaluation)."""

    crop_pad: int = 0  # random crop of the input size from the image padded by this
    flip: bool = False  # random horizontal flips
    scale_crop: tuple[float, float] = ()  # crops of this fraction of the area, aspect 3/4..4/3


def load(spec: str, size: tuple[int, int] | None = None) -> tuple[Split, Split]:
    """The train and test splits that SPEC names, as stored (see `fit` for the net)."""
    kind, _, where = spec.partition(":")
    if kind not in KINDS:
        raise DataError(f"unknown data '{spec}': give one of digits, "
                        + ", ".join(f"{k}:DIR" for k in KINDS[1:]))
    if kind == "digits":
        if where:
            raise DataError(f"--data {spec}: the bundled digits take no folder (give digits)")
        return _digits_splits()
    if not where:
        raise DataError(f"--data {kind} needs a folder: {kind}:DIR")
    root = Path(where).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    readers = {
        "cifar10": lambda split: formats.cifar(root, split, hundred=False),
        "cifar100": lambda split: formats.cifar(root, split, hundred=True),
        "mnist": lambda split: formats.mnist(root, split),
        "fashion-mnist": lambda split: formats.mnist(root, split),
        "svhn": lambda split: formats.svhn(root, split),
        "folder": lambda split: formats.folder(root / split, classes, size),
    }
    if kind == "folder":
        classes, one_split_only = formats.folder_classes(root / "train", root / "test")
        if one_split_only:
            print(f"archc: warning: {root}: classes in one split only: "
                  f"{', '.join(one_split_only)} (labels still agree: one class list for both)",
                  file=sys.stderr)
    splits = tuple(_split(*readers[kind](split)) for split in ("train", "test"))
    for split, name in zip(splits, ("train", "test")):
        if not len(split):
            raise DataError(f"{root}: the {name} split holds no images")
    return splits


def _digits_splits() -> tuple[Split, Split]:
    """scikit-learn's 1,797 digits, split 80/20 by a fixed permutation (the same everywhere)."""
    images, labels, classes = formats.digits()
    order = np.random.RandomState(0).permutation(len(labels))
    cut = len(order) * 4 // 5
    return (_split(images[order[:cut]], labels[order[:cut]], classes),
            _split(images[order[cut:]], labels[order[cut:]], classes))


def _split(images: np.ndarray, labels: np.ndarray, classes: list[str]) -> Split:
    images = np.ascontiguousarray(images)
    images = images if images.flags.writeable else images.copy()  # torch wants to own it
    return Split(torch.from_numpy(images),
                 torch.from_numpy(np.asarray(labels, dtype=np.int64)), tuple(classes))


def fit(split: Split, shape: tuple[int, int, int], classes: int, name: str,
        resize: bool = False, gray_to_rgb: bool = False) -> Split:
    """`split` as the net takes it, or DataError saying what differs and which option helps."""
    c, h, w = shape
    images = split.images
    if images.shape[1] == 1 and c == 3 and gray_to_rgb:
        images = images.expand(-1, 3, -1, -1).contiguous()
    if images.shape[1] != c:
        hint = " (give --gray-to-rgb)" if images.shape[1] == 1 and c == 3 else ""
        raise DataError(f"{name} images have {images.shape[1]} channel(s), the net takes "
                        f"{c}{hint}")
    if tuple(images.shape[2:]) != (h, w):
        if not resize:
            raise DataError(f"{name} images are {images.shape[2]}x{images.shape[3]}, the net "
                            f"takes {h}x{w} (give --resize {h}x{w}, or build the net for "
                            "this size)")
        images = F.interpolate(images.float(), size=(h, w), mode="bilinear",
                               align_corners=False).round().clamp(0, 255).to(torch.uint8)
    found = int(split.labels.max()) + 1 if len(split) else 0
    if found > classes:
        raise DataError(f"{name} has {max(found, len(split.classes))} classes, the net "
                        f"predicts {classes} (give --set classes={max(found, len(split.classes))})")
    return Split(images, split.labels, split.classes)


def batches(split: Split, batch_size: int, seed: int, epoch: int, shuffle: bool,
            rank: int = 0, world: int = 1):
    """(batch index, index tensor) of this rank's batches in this epoch's order.

    Training (shuffle): every rank draws the same order from (seed, epoch), trimmed to a
    multiple of world; global batch b is its b-th run of `batch_size` samples, and rank r
    takes every world-th of them, so a step over K ranks sees the samples one process would.
    Evaluation: rank r takes samples r, r + world, ... in batches: no padding, no duplicates.
    """
    n = len(split)
    if not shuffle:
        mine = torch.arange(rank, n, world)
        for b, start in enumerate(range(0, len(mine), batch_size)):
            yield b, mine[start:start + batch_size]
        return
    order = torch.randperm(n, generator=_generator(seed, epoch, -1))[: n - n % world]
    for b, start in enumerate(range(0, len(order), batch_size)):
        yield b, order[start:start + batch_size][rank::world]


def steps_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    return -(-(n - n % world) // batch_size)


def make_batch(split: Split, index: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
               augment: Augment | None, seed: int, epoch: int, batch: int):
    """Normalised float images [B, C, H, W] and labels, augmented by (seed, epoch, batch)."""
    device = split.images.device
    index = index.to(device)
    x = split.images[index].float()
    if augment is not None and (augment.crop_pad or augment.flip or augment.scale_crop):
        g = _generator(seed, epoch, batch)
        x = _augment(x, augment, g)
    return (x / 255 - mean) / std, split.labels[index]


def _augment(x: torch.Tensor, augment: Augment, g: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    if augment.scale_crop:
        x = _scale_crop(x, augment.scale_crop, g)
    if augment.crop_pad:
        p = augment.crop_pad
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=g)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=g)
        rows = (dy[:, None] + torch.arange(h)).to(x.device)  # [n, h]
        cols = (dx[:, None] + torch.arange(w)).to(x.device)  # [n, w]
        x = padded[torch.arange(n, device=x.device)[:, None, None, None],
                   torch.arange(x.shape[1], device=x.device)[None, :, None, None],
                   rows[:, None, :, None], cols[:, None, None, :]]
    if augment.flip:
        flips = (torch.rand(n, generator=g) < 0.5).to(x.device)
        x = torch.where(flips[:, None, None, None], x.flip(3), x)
    return x


def _scale_crop(x: torch.Tensor, area: tuple[float, float], g: torch.Generator):
    """Crops of a random fraction of the area and aspect ratio in [3/4, 4/3], resized back
    to the input size (bilinear), all in one grid_sample."""
    n = x.shape[0]
    fraction = area[0] + (area[1] - area[0]) * torch.rand(n, generator=g)
    aspect = torch.exp(math.log(3 / 4) + math.log(16 / 9) * torch.rand(n, generator=g))
    width = (fraction * aspect).sqrt().clamp(max=1.0)  # fractions of the image's sides
    height = (fraction / aspect).sqrt().clamp(max=1.0)
    cx = (1 - width) * (2 * torch.rand(n, generator=g) - 1)  # centres, in [-1, 1] units
    cy = (1 - height) * (2 * torch.rand(n, generator=g) - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = width, cx, height, cy
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", align_corners=False)


def statistics(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of the training images, in [0, 1] units."""
    x = split.images.double() / 255
    mean = x.mean((0, 2, 3))
    std = x.std((0, 2, 3)).clamp_min(1e-3)
    return mean.float()[None, :, None, None], std.float()[None, :, None, None]


def _generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """A CPU generator for one purpose: (seed, epoch, batch) -> its own stream."""
    g = torch.Generator()
    g.manual_seed(hash((seed, epoch, batch)) & 0x7FFF_FFFF_FFFF_FFFF)
    return g
