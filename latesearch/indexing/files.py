"""File helpers shared by index builds, updates and reads: durable .npy writes, chunk
checksums, hard links that fall back to copies, folder sizes, and the advisory lock that
serializes writers."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tokenize
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from latesearch.errors import IndexBusyError as IndexBusyError  # their old home
from latesearch.errors import IndexCorruptError
from latesearch.errors import IndexExistsError as IndexExistsError

LOCK_SUFFIX = ".lock"


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


def chunk_digest(embeddings: np.ndarray) -> str:
    """SHA-256 of a chunk's embeddings (its manifest `sha256`; `IndexStore.verify`)."""
    return hashlib.sha256(np.ascontiguousarray(embeddings).data).hexdigest()


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` as `target` (files of an index are never modified in place), or
    copy it where the file system has no hard links."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Refuse a second build or update of the same index at the same time (POSIX advisory
    lock on `<folder>.lock`)."""
    path = folder.with_name(folder.name + LOCK_SUFFIX)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise IndexBusyError(
                f"{path}: another build or update of this index is running"
            ) from None
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def writer_active(folder: Path) -> bool:
    """Whether a build or update of `folder` holds its writer lock now."""
    path = folder.with_name(folder.name + LOCK_SUFFIX)
    try:
        import fcntl
    except ImportError:
        return False
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return False
