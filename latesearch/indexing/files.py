"""File helpers shared by index builds and updates: hard links that fall back to copies,
folder sizes, and the advisory lock that serializes writers (the .npy and checksum helpers
are in `latesearch.compressed.arrays`)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from latesearch.errors import IndexBusyError, IndexExistsError

__all__ = [
    "IndexBusyError",
    "IndexExistsError",
    "folder_bytes",
    "link_or_copy",
    "writer_active",
    "writer_lock",
]

LOCK_SUFFIX = ".lock"


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
