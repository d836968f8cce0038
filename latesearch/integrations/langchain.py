"""A LangChain retriever over a latesearch index (latesearch[langchain]).

    from latesearch.integrations.langchain import LatesearchRetriever
    retriever = LatesearchRetriever(index=Index.load("indexes/corpus"), k=5,
                                    filter={"lang": "en"})
    docs = retriever.invoke("what is late interaction?")
    docs = await retriever.ainvoke("...", filter={"year": {"$gte": 2020}}, k=3)

Each hit is a `Document`: `id` the document's id, `page_content` its text, `metadata` its
`doc_id`, `score`, `rank`, `title` and its own metadata fields.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, field_validator

from latesearch.integrations.searching import (
    SearchCall,
    asearch,
    check_index,
    hit_metadata,
    search,
)
from latesearch.search.results import Hits

# keyword arguments LangChain's `invoke` passes along that are not search options
_RUNNABLE_KWARGS = ("verbose",)


class LatesearchRetriever(BaseRetriever):
    """Top-`k` documents of an `Index`, a `ShardedIndex` or any object with
    `Index.search`'s signature (and `asearch`, used by `ainvoke`, where it has one).

    `mode` and `options` are `Index.search`'s (e.g. `mode="hybrid"`, `options={"ndocs":
    4096}`); `filter` restricts every search to the documents whose metadata match (the
    `Index.search` filter language). `invoke(query, k=..., mode=..., filter=..., **options)`
    overrides them for one call; a call's filter is added to the retriever's.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = 10
    mode: str | None = None
    filter: Any = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("index")
    @classmethod
    def _searchable(cls, index: Any) -> Any:
        return check_index(index)

    def _call(self, overrides: dict[str, Any]) -> SearchCall:
        for name in _RUNNABLE_KWARGS:
            overrides.pop(name, None)
        return SearchCall(self.k, self.mode, self.filter, dict(self.options)).with_call(**overrides)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        return documents(search(self.index, query, self._call(overrides)))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
        **overrides: Any,
    ) -> list[Document]:  # fmt: skip
        return documents(await asearch(self.index, query, self._call(overrides)))


def documents(hits: Hits) -> list[Document]:
    """LangChain documents of ranked hits (with texts and metadata), best first."""
    return [Document(id=hit.doc_id, page_content=hit.text or "", metadata=hit_metadata(hit))
            for hit in hits]  # fmt: skip
