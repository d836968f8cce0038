"""The array files of an index: .npy files saved durably and loaded with their dtype, shape
and size checked, and the SHA-256 digests of files and arrays that its checksums record."""

from __future__ import annotations

import hashlib
import os
import tokenize
from pathlib import Path

import numpy as np

from latesearch.errors import IndexCorruptError


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write `array` to `path` via a fsynced temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# what reading a damaged .npy (or a library's files) can raise: numpy parses the header
# with `ast` (SyntaxError, tokenize.TokenError), then reads short (EOFError, ValueError)
READ_ERRORS = (OSError, ValueError, EOFError, SyntaxError, TypeError, KeyError, IndexError,
               tokenize.TokenError)  # fmt: skip


def load_npy(path: Path, *, dtype: str, shape: tuple[int, ...], mmap: bool) -> np.ndarray:
    """Load a .npy file checking dtype, shape and exact file size; IndexCorruptError if not."""
    if not path.is_file():
        raise IndexCorruptError(f"{path}: missing")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except READ_ERRORS as err:
        raise IndexCorruptError(f"{path}: unreadable or truncated ({err})") from None
    if array.dtype != np.dtype(dtype) or array.shape != shape:
        raise IndexCorruptError(
            f"{path}: holds {array.dtype}{list(array.shape)}, expected {dtype}{list(shape)}"
        )
    if isinstance(array, np.memmap) and path.stat().st_size != array.offset + array.nbytes:
        raise IndexCorruptError(f"{path}: file size does not match its header")
    return array


def chunk_digest(array: np.ndarray) -> str:
    """SHA-256 of an array's data: a chunk's vectors, codes, residuals or doclens as its
    manifest record holds them (computed as the chunk is written; `verify` re-hashes)."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def file_digest(path: Path, block: int = 1 << 24) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while data := handle.read(block):
            digest.update(data)
    return digest.hexdigest()


def unit_rows(x: np.ndarray) -> np.ndarray:
    """`x` as float32 with every row divided by its norm (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
