"""The LangChain retriever against the real langchain-core: documents, metadata, filters,
async, and a small chain with LangChain's fake chat model."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("langchain_core", reason="the [langchain] extra is not installed")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import RunnablePassthrough  # noqa: E402

from latesearch.errors import InputError  # noqa: E402
from latesearch.integrations.langchain import LatesearchRetriever  # noqa: E402

from .conftest import EVERYTHING  # noqa: E402

QUERY = "late interaction search"


def test_documents_are_the_index_hits_with_text_and_metadata(searchable):
    retriever = LatesearchRetriever(index=searchable, k=5, options=EVERYTHING)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(QUERY)
    hits = searchable.search(QUERY, k=5, return_text=True, return_metadata=True, **EVERYTHING)
    assert [d.id for d in docs] == [h.doc_id for h in hits]
    assert all(isinstance(d, Document) for d in docs)
    for doc, hit in zip(docs, hits, strict=True):
        assert doc.page_content == hit.text
        assert doc.metadata == {"doc_id": hit.doc_id, "score": hit.score, "rank": hit.rank,
                                "title": hit.title, **hit.metadata}  # fmt: skip


def test_filters_pass_through_and_calls_add_to_them(searchable):
    retriever = LatesearchRetriever(
        index=searchable, k=30, filter={"lang": "en"}, options=EVERYTHING
    )
    docs = retriever.invoke(QUERY)
    assert docs and {d.metadata["lang"] for d in docs} == {"en"}
    assert len(docs) == 12
    both = retriever.invoke(QUERY, filter={"year": {"$gte": 2003}}, k=30)
    assert both and all(d.metadata["lang"] == "en" and d.metadata["year"] >= 2003 for d in both)
    assert {d.id for d in both} < {d.id for d in docs}


def test_call_overrides_k_and_mode(searchable):
    retriever = LatesearchRetriever(index=searchable, k=5)
    assert len(retriever.invoke(QUERY, k=2)) == 2
    exact = retriever.invoke(QUERY, mode="exact", k=4)
    hits = searchable.search(QUERY, k=4, mode="exact")
    assert [d.id for d in exact] == [h.doc_id for h in hits]


def test_async_matches_sync(searchable):
    retriever = LatesearchRetriever(index=searchable, k=4, options=EVERYTHING)
    sync = retriever.invoke(QUERY)
    batch = asyncio.run(_gather(retriever, [QUERY, "dog river"]))
    assert [d.id for d in batch[0]] == [d.id for d in sync]
    assert len(batch[1]) == 4


async def _gather(retriever, queries):
    return await asyncio.gather(*(retriever.ainvoke(q) for q in queries))


def test_async_uses_the_index_asearch_where_it_has_one(indexes):
    class Remote:  # a client with an async search, as a remote index would have
        def __init__(self, index):
            self.index, self.calls = index, []

        def search(self, *args, **kwargs):
            raise AssertionError("the async path must not block on search")

        async def asearch(self, query, **kwargs):
            self.calls.append(kwargs)
            return self.index.search(query, **kwargs)

    remote = Remote(indexes["index"])
    docs = asyncio.run(LatesearchRetriever(index=remote, k=3).ainvoke(QUERY, filter={"lang": "de"}))
    assert len(docs) == 3 and {d.metadata["lang"] for d in docs} == {"de"}
    assert remote.calls[0]["return_metadata"] and remote.calls[0]["filter"] == {"lang": "de"}


def test_bad_options_are_clear_errors(indexes):
    with pytest.raises(ValueError, match="search method"):
        LatesearchRetriever(index="indexes/corpus")
    with pytest.raises(InputError, match="set by the retriever"):
        LatesearchRetriever(index=indexes["index"], options={"return_text": False}).invoke("x")
    with pytest.raises(InputError, match="filter"):
        LatesearchRetriever(index=indexes["index"], filter={"year": {"$near": 1}}).invoke("x")


def test_a_rag_chain_with_a_fake_llm_sees_the_retrieved_texts(indexes):
    retriever = LatesearchRetriever(index=indexes["index"], k=2, filter={"lang": "de"})
    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")

    def join(docs):
        return "\n".join(f"[{d.id}] {d.page_content}" for d in docs)

    chain = ({"context": retriever | join, "question": RunnablePassthrough()}
             | prompt | ParrotFakeChatModel() | StrOutputParser())  # fmt: skip
    answer = chain.invoke(QUERY)
    expected = indexes["index"].search(QUERY, k=2, filter={"lang": "de"}, return_text=True)
    assert answer.endswith(f"Question: {QUERY}")
    for hit in expected:
        assert f"[{hit.doc_id}] {hit.text}" in answer
    assert asyncio.run(chain.ainvoke(QUERY)) == answer
