"""The indexing side of `latesearch.data`: streamed documents, their count, a duplicate-id
check whose memory is bounded by the group size rather than the collection size, and the
changes that sync an index with its folder of documents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latesearch.data import Document, ReadStats, read_collection
from latesearch.data.folders import FileState, folder_files, is_document_folder, read_folder
from latesearch.errors import InputError, LatesearchError
from latesearch.indexing.config import IndexConfig
from latesearch.indexing.docstore import DocStoreWriter


class StoredIds:
    """The ids the reader has returned, for its duplicate check, in bounded memory.

    Ids of documents already in the doc store are looked up there (SQLite, indexed); only
    ids read but not yet stored (about two groups) are held in memory. The first `stored`
    ids read are those of the finished chunks being passed over on resume: an id counts as
    seen only if it is stored at an earlier position than the one being read.
    """

    def __init__(self, store: DocStoreWriter, stored: int = 0) -> None:
        self.store, self.stored = store, stored
        self.position = 0  # ids returned so far
        self.pending: set[str] = set()

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        if doc_id in self.pending:
            return True
        index = self.store.index_of(doc_id)
        return index is not None and index < self.position

    def add(self, doc_id: str) -> None:
        if self.position >= self.stored:
            self.pending.add(doc_id)
        self.position += 1

    def mark_stored(self, doc_ids: Iterable[str]) -> None:
        """Forget ids now in the doc store (they are found there from now on)."""
        self.pending.difference_update(doc_ids)


def documents_of(
    collection: Any, config: IndexConfig, seen: StoredIds | None = None
) -> tuple[ReadStats, Iterator[Document]]:
    """(read statistics, iterator of Documents) for a path or an iterable."""
    stats = ReadStats()
    docs = read_collection(
        collection,
        title_join=config.title_join,
        on_error=config.on_error,
        stats=stats,
        seen=seen,
    )
    return stats, iter(docs)


def total_documents(collection: Any) -> int | None:
    """How many documents a collection holds, where that is cheap to know (for ETAs)."""
    from latesearch.data import count_documents

    try:
        return count_documents(collection)
    except LatesearchError:  # the real read reports the problem, with its location
        return None


@dataclass
class FolderChanges:
    """What syncing an index with its folder of documents does: the files added, changed
    and removed since the index last saw them (relative paths), the documents to add
    (replacing those of the same id) and the ids to delete."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.documents or self.delete)

    def __str__(self) -> str:
        return (f"{len(self.new)} new, {len(self.changed)} changed, {len(self.removed)} "
                "removed file(s)")  # fmt: skip


def folder_changes(
    stored: Iterable[tuple[str, dict[str, Any]]], folder: Any, on_error: str = "raise"
) -> FolderChanges:
    """The changes that bring an index whose documents' metadata are `stored` (doc_id,
    metadata) in line with `folder`: a file is changed when its modification time or size
    differs from what its documents recorded (documents without a `path`, `mtime` and
    `size` are left alone). The documents of new and changed files are
    read (into memory); the ids of removed files, and those a changed file no longer
    holds, are to be deleted."""
    path = Path(folder)
    if not is_document_folder(path):
        raise InputError("not a folder of documents (a folder without corpus.jsonl)",
                         path=str(path))  # fmt: skip
    ids_of: dict[str, list[str]] = {}
    state_of: dict[str, FileState] = {}
    for doc_id, meta in stored:
        relative = meta.get("path")
        if not isinstance(relative, str) or not all(
            isinstance(meta.get(name), int | float) for name in ("mtime", "size")
        ):
            continue  # not read from a folder: left alone
        ids_of.setdefault(relative, []).append(doc_id)
        state_of[relative] = FileState(meta.get("mtime"), meta.get("size"))  # type: ignore[arg-type]
    current = folder_files(path)
    changes = FolderChanges(
        new=sorted(set(current) - set(state_of)),
        changed=sorted(r for r in current if r in state_of and current[r] != state_of[r]),
        removed=sorted(set(state_of) - set(current)),
    )
    rows = read_folder(path, on_error, ReadStats(), only=[*changes.new, *changes.changed])
    changes.documents = [doc for _, doc in rows]  # checked again when added
    kept = {doc.doc_id for doc in changes.documents}
    for relative in (*changes.changed, *changes.removed):
        changes.delete.extend(i for i in ids_of[relative] if i not in kept)
    return changes
