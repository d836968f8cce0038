"""Durable writes: files and folders appear whole or not at all (temporary path, fsync,
`os.replace`), so a crash or Ctrl-C never leaves a half-written config, index or model."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` via a fsynced temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as indented JSON to `path` via a fsynced temporary file."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def check_replaceable(target: str | os.PathLike, *markers: str) -> None:
    """Refuse to replace `target` unless it is absent, an empty folder, or a folder holding
    one of `markers` (an older copy of the same kind of thing): never wipe unrelated data."""
    from latesearch.errors import InputError

    target = Path(target)
    if not target.exists():
        return
    if target.is_dir() and (
        not any(target.iterdir()) or any((target / m).is_file() for m in markers)
    ):
        return
    what = " or ".join(markers)
    raise InputError(f"refusing to replace {target}: it exists and has no {what}")


def replace_folder(tmp: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rename the finished folder `tmp` onto `target`. An existing `target` is moved aside
    first and deleted only after the rename, so one complete copy exists at every moment."""
    tmp, target = Path(tmp), Path(target)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
        os.replace(target, old)
        os.replace(tmp, target)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.replace(tmp, target)
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return target
