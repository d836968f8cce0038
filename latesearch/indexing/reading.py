"""The indexing side of `latesearch.data`: streamed documents and their count."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from latesearch.data import Document, ReadStats, read_collection
from latesearch.errors import LatesearchError
from latesearch.indexing.config import IndexConfig


def documents_of(collection: Any, config: IndexConfig) -> tuple[ReadStats, Iterator[Document]]:
    """(read statistics, iterator of Documents) for a path or an iterable."""
    stats = ReadStats()
    docs = read_collection(
        collection, title_join=config.title_join, on_error=config.on_error, stats=stats
    )
    return stats, iter(docs)


def total_documents(collection: Any) -> int | None:
    """How many documents a collection holds, where that is cheap to know (for ETAs)."""
    from latesearch.data import count_documents

    try:
        return count_documents(collection)
    except LatesearchError:  # the real read reports the problem, with its location
        return None
