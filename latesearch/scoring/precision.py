"""Widening stored half-precision vectors to float32 for CPU scoring.

NumPy converts float16 element by element (about 2.5 ns each here); a lookup of every one
of the 65,536 half-precision bit patterns in a 256 KiB table that stays in cache is about
twice as fast, and exact (NaN and infinities included)."""

from __future__ import annotations

import numpy as np

_FLOAT32_OF_HALF = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
_FLOAT32_OF_HALF = _FLOAT32_OF_HALF.astype(np.float32)


def as_float32(array: np.ndarray) -> np.ndarray:
    """`array` as float32: a table lookup for float16, a plain conversion otherwise."""
    if array.dtype == np.float16:
        return np.take(_FLOAT32_OF_HALF, np.ascontiguousarray(array).view(np.uint16))
    return np.asarray(array, dtype=np.float32)
