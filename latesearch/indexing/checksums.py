"""Checksums of an index's files, and checking them.

Three kinds of record cover every file of an index folder:

- a chunk's arrays (vectors, codes, residuals, doclens): the SHA-256 of the array's data in
  its `ChunkInfo` (computed from memory as the chunk is written, so never re-read);
- every other file of the index proper (ids, doc store, codec, inverted file): a
  `{"bytes", "sha256"}` record in the manifest's `files` (the codec's arrays and the
  inverted file are also in `codec.sha256`, as before);
- a component folder (`bm25/`, `ann/`): its own `checksums.json`, written inside the folder
  before it is renamed into place, so a component and its sums appear together.

Opening checks sizes only (a `stat` per file); `verify` re-hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latesearch._atomic import write_json
from latesearch._configio import read_json
from latesearch.compressed.arrays import file_digest
from latesearch.errors import IndexCorruptError

CHECKSUMS = "checksums.json"


def file_record(path: Path) -> dict[str, Any]:
    """`{"bytes", "sha256"}` of a file."""
    return {"bytes": path.stat().st_size, "sha256": file_digest(path)}


def files_under(folder: Path) -> list[str]:
    """Relative paths (POSIX) of every file below `folder`, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def check_records(records: Any, *, source: str) -> dict[str, dict[str, Any]]:
    """Validate a `{path: {"bytes", "sha256"}}` mapping read from `source`."""
    if not isinstance(records, dict):
        raise IndexCorruptError(f"{source}: checksums must be an object")
    for name, record in records.items():
        ok = (
            isinstance(record, dict)
            and isinstance(record.get("bytes"), int)
            and not isinstance(record.get("bytes"), bool)
            and isinstance(record.get("sha256"), str)
            and not Path(name).is_absolute()
            and ".." not in Path(name).parts
        )
        if not ok:
            raise IndexCorruptError(f"{source}: malformed checksum entry for {name!r}")
    return records


def check_sizes(folder: Path, records: dict[str, dict[str, Any]]) -> None:
    """The cheap check: every recorded file exists with its recorded size."""
    for name, record in records.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            raise IndexCorruptError(f"{path}: missing") from None
        if size != record["bytes"]:
            raise IndexCorruptError(
                f"{path}: {size} bytes, its checksum record says {record['bytes']}"
            )


def check_digests(folder: Path, records: dict[str, dict[str, Any]]) -> int:
    """Re-hash every recorded file; IndexCorruptError names the first that differs. Returns
    the bytes read."""
    check_sizes(folder, records)
    for name, record in records.items():
        if file_digest(folder / name) != record["sha256"]:
            raise IndexCorruptError(damaged(folder / name))
    return sum(int(r["bytes"]) for r in records.values())


def damaged(path: Path) -> str:
    return (
        f"{path}: checksum mismatch (the file changed after it was written; rebuild the "
        "index or restore it from a copy)"
    )


# ---------------------------------------------------------------------- components
def seal_component(folder: Path) -> None:
    """Write `checksums.json` into a finished component folder: every other file in it."""
    records = {name: file_record(folder / name) for name in files_under(folder)
               if name != CHECKSUMS}  # fmt: skip
    write_json(folder / CHECKSUMS, records)


def component_records(folder: Path) -> dict[str, dict[str, Any]] | None:
    """A component's checksum records, or None where it has none (written by a version of
    latesearch before they existed)."""
    path = folder / CHECKSUMS
    if not path.is_file():
        return None
    return check_records(read_json(path, error=IndexCorruptError), source=str(path))


def check_component(folder: Path, *, full: bool) -> int:
    """Check a component folder against its `checksums.json` (sizes, or with `full` the
    hashes too). Returns the bytes hashed (0 without `full` or without records)."""
    records = component_records(folder)
    if records is None:
        return 0
    if full:
        return check_digests(folder, records)
    check_sizes(folder, records)
    return 0


@dataclass
class VerifyReport:
    """What `IndexStore.verify` read: files and bytes hashed, and files no checksum covers
    (those of an index or component written before every file had one)."""

    files: int = 0
    bytes: int = 0
    unchecked: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unchecked
