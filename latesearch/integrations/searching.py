"""What the framework retrievers share: one search of any `Index`-like object, with the
texts and metadata the frameworks' documents carry, sync or async."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from latesearch.client import AsyncClient
from latesearch.errors import InputError
from latesearch.indexing.filters import parse_filter
from latesearch.search.results import Hits


class Searchable(Protocol):
    """Anything searched like `Index.search(query, k, mode, **options)` (an `Index`, a
    `ShardedIndex`, a `Client`); the async paths use an `asearch` coroutine of the same
    signature where it exists, or a `search` that is itself async (an `AsyncClient`)."""

    def search(self, queries: str, k: int | None = None, mode: str | None = None,
               **options: Any) -> Hits: ...  # fmt: skip


# set by the retriever, so that every hit carries what the framework's documents hold
FORCED = ("return_text", "return_metadata")


@dataclass(frozen=True)
class SearchCall:
    """The settings of a retriever's searches: `k`, `mode`, a metadata `filter` (the
    `Index.search` filter language) and other flat search `options`."""

    k: int = 10
    mode: str | None = None
    filter: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        forced = sorted(set(self.options) & {*FORCED, "k", "mode", "filter"})
        if forced:
            raise InputError(f"search options {forced} are set by the retriever itself",
                             field="options")  # fmt: skip

    def with_call(self, k: int | None = None, mode: str | None = None, filter: Any = None,  # noqa: A002
                  **options: Any) -> SearchCall:  # fmt: skip
        """These settings with one call's overrides (a call's filter is added to the
        retriever's: both must match)."""
        merged = self.filter if filter is None else _both(self.filter, filter)
        return SearchCall(self.k if k is None else k, mode or self.mode, merged,
                          {**self.options, **options})  # fmt: skip

    def arguments(self) -> dict[str, Any]:
        extra = {} if self.filter is None else {"filter": self.filter}
        return {"k": self.k, "mode": self.mode, **self.options, **extra,
                "return_text": True, "return_metadata": True}  # fmt: skip


def check_index(index: Any) -> Any:
    """`index`, if it can be searched like `Index.search` (InputError otherwise)."""
    if not callable(getattr(index, "search", None)):
        raise InputError(f"a retriever searches an Index, a ShardedIndex or an object with a "
                         f"search method, got {type(index).__name__}", field="index")  # fmt: skip
    return index


def search(index: Searchable, query: str, call: SearchCall) -> Hits:
    """One query's hits, with texts and metadata (InputError for an async-only index: its
    search is awaited by the framework's async calls)."""
    _check_query(query)
    if native_async(index) == index.search:
        raise InputError(f"{type(index).__name__}'s search is async: use the framework's "
                         "async call (ainvoke, aretrieve, run_async) or a Client",
                         field="index")  # fmt: skip
    return index.search(query, **call.arguments())


async def asearch(index: Searchable, query: str, call: SearchCall) -> Hits:
    """`search` without blocking the event loop: the index's own async search where it
    has one (`native_async`), else the search in a worker thread."""
    _check_query(query)
    own = native_async(index)
    if own is not None:
        return await own(query, **call.arguments())
    return await asyncio.to_thread(index.search, query, **call.arguments())


def native_async(index: Any) -> Callable[..., Awaitable[Hits]] | None:
    """The index's async search: its `asearch`, or its `search` where that is async (an
    `AsyncClient`'s, or a coroutine function); None where it has neither."""
    own = getattr(index, "asearch", None)
    if callable(own):
        return own
    if isinstance(index, AsyncClient) or inspect.iscoroutinefunction(index.search):
        return index.search
    return None


def _check_query(query: Any) -> None:
    if not isinstance(query, str):
        raise InputError(f"a query must be a string, got {type(query).__name__}",
                         field="query")  # fmt: skip


def hit_metadata(hit: Any) -> dict[str, Any]:
    """A hit's metadata for a framework document: `doc_id`, `score`, `rank`, `title` (when
    the document has one), then the document's own metadata fields, which win over those
    four names when they use them."""
    extra = {"title": hit.title} if hit.title else {}
    return {"doc_id": hit.doc_id, "score": hit.score, "rank": hit.rank, **extra,
            **(hit.metadata or {})}  # fmt: skip


def _both(first: Any, second: Any) -> Any:
    if first is None:
        return second
    return {"$and": [parse_filter(first), parse_filter(second)]}
