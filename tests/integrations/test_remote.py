"""Each framework's retriever over a live server, through `latesearch.Client` and
`AsyncClient`: the hits the index answers, metadata and filters sent along, and async
calls awaiting the AsyncClient's own search (no worker thread)."""

from __future__ import annotations

import asyncio
import os

import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # offline: no telemetry
pytest.importorskip("httpx")

from latesearch import AsyncClient  # noqa: E402
from latesearch.errors import InputError  # noqa: E402

QUERY = "late interaction search"
EXACT = {"mode": "exact"}  # every document scored: the remote and local answers agree
EN = {"lang": "en"}
EN_IDS = {f"d{i}" for i in range(0, 24, 2)}


def expected(index, k, filter=None):  # noqa: A002
    hits = index.search(QUERY, k=k, mode="exact", filter=filter, return_text=True,
                        return_metadata=True)  # fmt: skip
    return [(h.doc_id, h.text, h.title, h.metadata) for h in hits]


@pytest.fixture
def no_threads(monkeypatch):
    """Async calls must await the AsyncClient itself: a worker thread is an error."""

    def refuse(*args, **kwargs):
        raise AssertionError("an AsyncClient's search ran in a worker thread")

    monkeypatch.setattr(asyncio, "to_thread", refuse)


def remote(server, body):
    """Run `body(async_client)` in a fresh event loop (an httpx pool belongs to one loop)."""

    async def run():
        async with AsyncClient(server.url) as client:
            return await body(client)

    return asyncio.run(run())


# ---------------------------------------------------------------------- LangChain
def test_langchain_over_client_and_async_client(server, client, indexes, no_threads):
    pytest.importorskip("langchain_core")
    from latesearch.integrations.langchain import LatesearchRetriever

    def seen(docs):
        return [(d.id, d.page_content, d.metadata["title"],
                 {k: d.metadata[k] for k in ("lang", "year", "tags")}) for d in docs]  # fmt: skip

    index = indexes["index"]
    docs = LatesearchRetriever(index=client, k=5, **EXACT).invoke(QUERY)
    assert seen(docs) == expected(index, 5)
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3, 4, 5]
    best = index.search(QUERY, k=1, mode="exact")[0]
    assert docs[0].metadata["score"] == pytest.approx(best.score, abs=1e-4)
    filtered = LatesearchRetriever(index=client, k=30, filter=EN, **EXACT)
    both = filtered.invoke(QUERY, filter={"year": {"$gte": 2003}})
    assert seen(both) == expected(index, 30, {"$and": [EN, {"year": {"$gte": 2003}}]})

    async def body(async_client):
        retriever = LatesearchRetriever(index=async_client, k=30, filter=EN, **EXACT)
        return await asyncio.gather(retriever.ainvoke(QUERY), retriever.ainvoke(QUERY, k=2))

    many, two = remote(server, body)
    assert seen(many) == expected(index, 30, EN) and {d.id for d in many} == EN_IDS
    assert seen(two) == expected(index, 2, EN)


def test_sync_call_on_an_async_client_is_a_clear_error(server):
    pytest.importorskip("langchain_core")
    from latesearch.integrations.langchain import LatesearchRetriever

    async def body(async_client):
        LatesearchRetriever(index=async_client).invoke(QUERY)

    with pytest.raises(InputError, match="search is async: use the framework's async call"):
        remote(server, body)


def test_a_sync_client_in_an_async_call_runs_in_a_thread(client, indexes):
    pytest.importorskip("langchain_core")
    from latesearch.integrations.langchain import LatesearchRetriever

    docs = asyncio.run(LatesearchRetriever(index=client, k=3, **EXACT).ainvoke(QUERY))
    assert [d.id for d in docs] == [row[0] for row in expected(indexes["index"], 3)]


# ---------------------------------------------------------------------- LlamaIndex
def test_llamaindex_over_client_and_async_client(server, client, indexes, no_threads):
    pytest.importorskip("llama_index.core")
    from llama_index.core.vector_stores.types import (
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
    )

    from latesearch.integrations.llamaindex import LatesearchRetriever

    def seen(nodes):
        return [(n.node.node_id, n.node.get_content(), n.node.metadata["title"],
                 {k: n.node.metadata[k] for k in ("lang", "year", "tags")})
                for n in nodes]  # fmt: skip

    index = indexes["index"]
    assert seen(LatesearchRetriever(client, k=5, **EXACT).retrieve(QUERY)) == expected(index, 5)
    filters = MetadataFilters(filters=[
        MetadataFilter(key="lang", value="en"),
        MetadataFilter(key="year", value=2002, operator=FilterOperator.GTE)])  # fmt: skip
    spec = {"$and": [{"lang": {"$eq": "en"}}, {"year": {"$gte": 2002}}]}
    found = LatesearchRetriever(client, k=30, filters=filters, **EXACT).retrieve(QUERY)
    assert found and seen(found) == expected(index, 30, spec)

    async def body(async_client):
        return await LatesearchRetriever(async_client, k=30, filters=filters, **EXACT
                                         ).aretrieve(QUERY)  # fmt: skip

    assert seen(remote(server, body)) == seen(found)


# ---------------------------------------------------------------------- Haystack
def test_haystack_over_client_and_async_client(server, client, indexes, no_threads):
    pytest.importorskip("haystack")
    from latesearch.integrations.haystack import LatesearchRetriever

    def seen(out):
        return [(d.id, d.content, d.meta["title"], {k: d.meta[k] for k in ("lang", "year", "tags")})
                for d in out["documents"]]  # fmt: skip

    index = indexes["index"]
    assert seen(LatesearchRetriever(client, top_k=5, **EXACT).run(QUERY)) == expected(index, 5)
    en = {"field": "meta.lang", "operator": "==", "value": "en"}
    recent = {"field": "meta.year", "operator": ">=", "value": 2003}
    retriever = LatesearchRetriever(client, top_k=30, filters=en, **EXACT)
    spec = {"$and": [{"lang": {"$eq": "en"}}, {"year": {"$gte": 2003}}]}
    found = retriever.run(QUERY, filters=recent)
    assert found["documents"] and seen(found) == expected(index, 30, spec)

    async def body(async_client):
        return await LatesearchRetriever(async_client, top_k=30, filters=en, **EXACT
                                         ).run_async(QUERY, filters=recent)  # fmt: skip

    assert seen(remote(server, body)) == seen(found)
