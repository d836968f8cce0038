"""Small storage helpers shared by the search-side indexes: atomic folders, JSON configs."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from latesearch._atomic import check_replaceable, replace_folder, write_json
from latesearch._configio import check_positive
from latesearch._configio import read_json as _read_json
from latesearch.errors import ConfigError, IndexCorruptError

__all__ = ["atomic_folder", "check_number", "read_json", "write_json"]

T = TypeVar("T")


@contextmanager
def atomic_folder(folder: str | os.PathLike, *, marker: str) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `folder` (via `os.replace`).

    An existing `folder` is only replaced when it is empty or holds `marker` (i.e. it is an
    older copy of the same kind of index), never an unrelated folder.
    """
    target = Path(folder)
    check_replaceable(target, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_json(path: Path, *, error: type[Exception] = IndexCorruptError) -> Any:
    """A component's JSON file; missing or malformed raises `error` (corrupt index)."""
    return _read_json(path, error=error)


def check_number(owner: str, name: str, value: Any, *, minimum: float, integer: bool) -> None:
    """Raise ConfigError unless `value` is a number (an int when `integer`) >= `minimum`."""
    if integer:
        check_positive(f"{owner}.{name}", value, minimum=int(minimum), error=ConfigError)
        return
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    if bad or not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be a number >= {minimum}, got {value!r}")
