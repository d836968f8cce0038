"""A LlamaIndex retriever over a latesearch index (latesearch[llamaindex]).

    from latesearch.integrations.llamaindex import LatesearchRetriever
    retriever = LatesearchRetriever(Index.load("indexes/corpus"), k=5)
    nodes = retriever.retrieve("what is late interaction?")
    engine = RetrieverQueryEngine.from_args(retriever, llm=llm)

Each hit is a `NodeWithScore`: a `TextNode` (`id_` the document's id, its text, metadata
`doc_id`, `rank`, `title` and the document's own fields) and its score. LlamaIndex's
`MetadataFilters` are translated into the `Index.search` filter language
(`metadata_filter`).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from latesearch.errors import InputError
from latesearch.integrations.searching import (
    SearchCall,
    asearch,
    check_index,
    hit_metadata,
    search,
)
from latesearch.search.results import Hits

_SAME = {FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt",
         FilterOperator.GTE: "$gte", FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte",
         FilterOperator.IN: "$in", FilterOperator.NIN: "$nin",
         FilterOperator.ANY: "$in",  # a list field matches $in when any element does
         FilterOperator.CONTAINS: "$eq"}  # ... and $eq when one element equals  # fmt: skip


class LatesearchRetriever(BaseRetriever):
    """Top-`k` nodes of an `Index`, a `ShardedIndex` or any object with `Index.search`'s
    signature (and `asearch`, used by `aretrieve`, where it has one).

    `mode` and `options` are `Index.search`'s; `filters` (LlamaIndex `MetadataFilters`)
    or `filter` (the `Index.search` filter language) restrict every search; both given,
    both must match."""

    def __init__(
        self,
        index: Any,
        *,
        k: int = 10,
        mode: str | None = None,
        filters: MetadataFilters | None = None,
        filter: Any = None,  # noqa: A002
        options: dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.index = check_index(index)
        self.call = SearchCall(k, mode, filter, dict(options or {}))
        if filters is not None:
            self.call = self.call.with_call(filter=metadata_filter(filters))

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return nodes(search(self.index, query_bundle.query_str, self.call))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return nodes(await asearch(self.index, query_bundle.query_str, self.call))


def nodes(hits: Hits) -> list[NodeWithScore]:
    """LlamaIndex nodes of ranked hits (with texts and metadata), best first."""
    out = []
    for hit in hits:
        metadata = {k: v for k, v in hit_metadata(hit).items() if k != "score"}
        node = TextNode(id_=hit.doc_id, text=hit.text or "", metadata=metadata)
        out.append(NodeWithScore(node=node, score=hit.score))
    return out


def metadata_filter(filters: MetadataFilters) -> dict[str, Any]:
    """LlamaIndex `MetadataFilters` in the `Index.search` filter language. Text matching
    has no equivalent there: InputError on field "filters"."""
    parts = [_one(f) if isinstance(f, MetadataFilter) else metadata_filter(f)
             for f in filters.filters]  # fmt: skip
    condition = FilterCondition(filters.condition or FilterCondition.AND)
    if condition is FilterCondition.NOT:
        return {"$not": parts[0] if len(parts) == 1 else {"$and": parts}}
    if condition is FilterCondition.OR:
        return {"$or": parts}
    return {"$and": parts}


def _one(f: MetadataFilter) -> dict[str, Any]:
    operator = FilterOperator(f.operator)
    if operator in _SAME:
        return {f.key: {_SAME[operator]: f.value}}
    if operator is FilterOperator.ALL:
        values = f.value if isinstance(f.value, list) else [f.value]
        return {"$and": [{f.key: {"$eq": v}} for v in values]}
    if operator is FilterOperator.IS_EMPTY:
        return {"$or": [{f.key: {"$exists": False}}, {f.key: {"$eq": None}}]}
    raise InputError(f"filter operator {operator.value!r} (on {f.key!r}) has no latesearch "
                     "equivalent (supported: ==, !=, >, >=, <, <=, in, nin, any, all, "
                     "contains, is_empty)", field="filters")  # fmt: skip
