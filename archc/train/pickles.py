"""A pickle of numpy arrays read without trusting it: CIFAR's batches, from anyone's disk.

A pickle is a program for a small stack machine, and admitting only numpy's globals does not
make a corrupt one harmless. Its `BUILD` opcode calls `__setstate__` on what it built, and
`np.dtype("u1")` is numpy's one uint8 dtype: a few flipped bytes in a batch's dtype state
rewrite the process's uint8 (found by fuzzing: numpy then fails with "get_clear_loop not
set", and segfaults). C's unpickler also grows its memo to twice any index a `LONG_BINPUT`
names (a one-bit flip of `BINPUT`), clearing every entry; `BYTEARRAY8` allocates, zeroed,
whatever length it names: gigabytes touched.

So the batch is read whole; walked first with `pickletools.genops`, which parses every
opcode without running one and refuses any length past the end of the file; then run by
Python's own unpickler (`pickle._Unpickler`, the reference implementation that C's mirrors;
its memo is a dict and its opcodes a table one can replace, which C's offer no hook for),
with:
- globals: numpy's array reconstruction, dtypes and scalars, and `_codecs.encode` (how Python
  3 writes bytes into a protocol-2 pickle), nothing else, so no code runs;
- `BUILD` only on an array (numpy checks the shape against the bytes) and on a dtype whose
  state is the one it has (so nothing is rewritten); on nothing else;
- no arrays of Python objects, none larger than the file;
- a warning (numpy's, of a nonsensical argument) taken as the error it is.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings
from pathlib import Path

import numpy as np

from archc.train.errors import DataError


def unpickle(path: Path) -> object:
    """What the pickle at `path` holds, or a `DataError` naming the file and what is wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in pickletools.genops(raw):  # every length within the file
                pass
            return _ArraysOnly(raw).load()
    except Exception as error:  # a corrupt pickle fails in many ways (LookupError, ...); the
        # unpickler admits no code, so whatever it raises is about the bytes
        raise DataError(f"{path}: not a CIFAR batch ({type(error).__name__}: {error})") from None


class _ArraysOnly(pickle._Unpickler):
    """Python's unpickler, admitting what a CIFAR batch needs (numpy arrays) and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
               "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("_codecs", "encode")}

    def __init__(self, raw: bytes):
        super().__init__(io.BytesIO(raw), encoding="latin1")
        self.size = len(raw)

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        found = super().find_class(module, name)
        return self._bounded(found) if name == "_reconstruct" else found

    def _bounded(self, reconstruct):
        """numpy's `_reconstruct(ndarray, shape, dtype)`, for arrays no larger than the file
        (their bytes are in it) and of no objects."""
        def made(subtype, shape, dtype):
            kind = np.dtype(dtype)
            if kind.hasobject:
                raise pickle.UnpicklingError("an array of Python objects")
            if float(np.prod(shape, dtype=np.float64)) * kind.itemsize > self.size:
                raise pickle.UnpicklingError(f"an array {tuple(shape)} larger than the file")
            return reconstruct(subtype, shape, dtype)
        return made

    def load_build(self):
        state, target = self.stack[-1], self.stack[-2]
        if isinstance(target, np.dtype):
            if target.hasobject:
                raise pickle.UnpicklingError("an array of Python objects")
            if state != target.__reduce__()[2]:
                raise pickle.UnpicklingError(f"a dtype {target} given another state {state!r}")
            self.stack.pop()  # its state already: nothing to set
            return
        if not isinstance(target, np.ndarray):
            raise pickle.UnpicklingError(f"refusing to set the state of a {type(target)}")
        if isinstance(state, tuple) and any(isinstance(s, np.dtype) and s.hasobject
                                            for s in state):
            raise pickle.UnpicklingError("an array of Python objects")
        super().load_build()

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build
