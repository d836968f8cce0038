"""A Haystack retriever component over a latesearch index (latesearch[haystack]).

    from latesearch.integrations.haystack import LatesearchRetriever
    pipeline.add_component("retriever", LatesearchRetriever(Index.load("indexes/corpus")))
    result = pipeline.run({"retriever": {"query": "...", "filters": {
        "field": "meta.lang", "operator": "==", "value": "en"}}})

Each hit is a Haystack `Document`: `id` the document's id, `content` its text, `score`,
`meta` its `doc_id`, `rank`, `title` and its own metadata fields. Haystack filters
(`metadata_filter`) are translated into the `Index.search` filter language.
"""

from __future__ import annotations

from typing import Any

from haystack import Document, component

from latesearch.errors import InputError
from latesearch.integrations.searching import SearchCall, asearch, check_index, hit_metadata, search
from latesearch.search.results import Hits

_OPERATORS = {"==": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte",
              "in": "$in", "not in": "$nin"}  # fmt: skip
_LOGIC = {"AND": "$and", "OR": "$or"}


@component
class LatesearchRetriever:
    """Top-`top_k` documents of an `Index`, a `ShardedIndex` or any object with
    `Index.search`'s signature (and `asearch`, used by `run_async`, where it has one).
    `filters` (Haystack's filter syntax, on `meta.*` fields) restrict every search; a
    run's filters are added to them (both must match). `mode` and `options` are
    `Index.search`'s."""

    def __init__(self, index: Any, *, top_k: int = 10, mode: str | None = None,
                 filters: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.index = check_index(index)
        filter_ = None if filters is None else metadata_filter(filters)
        self.call = SearchCall(top_k, mode, filter_, dict(options or {}))

    def _call(self, filters: dict[str, Any] | None, top_k: int | None) -> SearchCall:
        return self.call.with_call(k=top_k, filter=None if filters is None
                                   else metadata_filter(filters))  # fmt: skip

    @component.output_types(documents=list[Document])
    def run(self, query: str, filters: dict[str, Any] | None = None,
            top_k: int | None = None) -> dict[str, list[Document]]:  # fmt: skip
        return {"documents": documents(search(self.index, query, self._call(filters, top_k)))}

    @component.output_types(documents=list[Document])
    async def run_async(self, query: str, filters: dict[str, Any] | None = None,
                        top_k: int | None = None) -> dict[str, list[Document]]:  # fmt: skip
        hits = await asearch(self.index, query, self._call(filters, top_k))
        return {"documents": documents(hits)}


def documents(hits: Hits) -> list[Document]:
    """Haystack documents of ranked hits (with texts and metadata), best first."""
    return [Document(id=hit.doc_id, content=hit.text or "", score=hit.score,
                     meta={k: v for k, v in hit_metadata(hit).items() if k != "score"})
            for hit in hits]  # fmt: skip


def metadata_filter(filters: dict[str, Any]) -> dict[str, Any]:
    """A Haystack filter (`{"field": "meta.x", "operator": "==", "value": ...}`, or
    `{"operator": "AND" | "OR" | "NOT", "conditions": [...]}`) in the `Index.search`
    filter language; only `meta.*` fields can be filtered on (InputError otherwise)."""
    if not isinstance(filters, dict) or "operator" not in filters:
        raise InputError(f"a Haystack filter needs an operator, got {filters!r}",
                         field="filters")  # fmt: skip
    operator = filters["operator"]
    if "conditions" in filters:
        parts = [metadata_filter(c) for c in filters["conditions"]]
        if operator == "NOT":
            return {"$not": {"$and": parts}}
        if operator not in _LOGIC:
            raise InputError(f"unknown logical operator {operator!r}", field="filters")
        return {_LOGIC[operator]: parts}
    field = str(filters.get("field", ""))
    if not field.startswith("meta."):
        raise InputError(f"only meta.* fields can be filtered on, got {field!r}",
                         field="filters")  # fmt: skip
    if operator not in _OPERATORS:
        raise InputError(f"unknown comparison operator {operator!r} (supported: "
                         f"{sorted(_OPERATORS)})", field="filters")  # fmt: skip
    return {field.removeprefix("meta."): {_OPERATORS[operator]: filters.get("value")}}
