"""The indexing side of `latesearch.data`: streamed documents, their count, and a duplicate-id
check whose memory is bounded by the group size rather than the collection size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from latesearch.data import Document, ReadStats, read_collection
from latesearch.errors import LatesearchError
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
