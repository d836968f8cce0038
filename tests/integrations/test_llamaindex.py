"""The LlamaIndex retriever against the real llama-index-core: nodes, metadata,
`MetadataFilters`, async, and a query engine with LlamaIndex's mock LLM."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("llama_index.core", reason="the [llamaindex] extra is not installed")

from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from latesearch.errors import InputError  # noqa: E402
from latesearch.integrations.llamaindex import LatesearchRetriever, metadata_filter  # noqa: E402

from .conftest import EVERYTHING  # noqa: E402

QUERY = "late interaction search"


def test_nodes_are_the_index_hits_with_text_metadata_and_score(searchable):
    retriever = LatesearchRetriever(searchable, k=5, options=EVERYTHING)
    assert isinstance(retriever, BaseRetriever)
    found = retriever.retrieve(QUERY)
    hits = searchable.search(QUERY, k=5, return_text=True, return_metadata=True, **EVERYTHING)
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in found)
    assert [n.node.node_id for n in found] == [h.doc_id for h in hits]
    for node, hit in zip(found, hits, strict=True):
        assert node.score == hit.score and node.node.get_content() == hit.text
        assert node.node.metadata == {"doc_id": hit.doc_id, "rank": hit.rank,
                                      "title": hit.title, **hit.metadata}  # fmt: skip


def _f(key, value, op="=="):
    return MetadataFilter(key=key, value=value, operator=FilterOperator(op))


def test_metadata_filters_are_applied(searchable):
    filters = MetadataFilters(filters=[_f("lang", "en"), _f("year", 2002, ">=")])
    found = LatesearchRetriever(searchable, k=30, filters=filters, options=EVERYTHING
                                ).retrieve(QUERY)  # fmt: skip
    assert found and all(n.node.metadata["lang"] == "en" and n.node.metadata["year"] >= 2002
                         for n in found)  # fmt: skip
    docs = [i for i in range(24) if i % 2 == 0 and 2000 + i % 5 >= 2002]
    assert sorted(n.node.node_id for n in found) == sorted(f"d{i}" for i in docs)


def test_filter_translation():
    nested = MetadataFilters(filters=[_f("year", [2001, 2003], "in"), _f("tags", "b", "contains")],
                             condition=FilterCondition.OR)  # fmt: skip
    both = MetadataFilters(filters=[_f("lang", "de", "!="), nested, _f("tags", ["a", "b"], "all")])
    assert metadata_filter(both) == {"$and": [
        {"lang": {"$ne": "de"}},
        {"$or": [{"year": {"$in": [2001, 2003]}}, {"tags": {"$eq": "b"}}]},
        {"$and": [{"tags": {"$eq": "a"}}, {"tags": {"$eq": "b"}}]},
    ]}  # fmt: skip
    negated = MetadataFilters(filters=[_f("lang", "de")], condition=FilterCondition.NOT)
    assert metadata_filter(negated) == {"$not": {"lang": {"$eq": "de"}}}
    with pytest.raises(InputError, match="text_match"):
        metadata_filter(MetadataFilters(filters=[_f("title", "x", "text_match")]))


def test_contains_all_and_is_empty_select_what_they_say(indexes):
    index = indexes["index"]

    def ids(*filters, condition="and"):
        mf = MetadataFilters(filters=list(filters), condition=FilterCondition(condition))
        found = LatesearchRetriever(index, k=30, filters=mf, options=EVERYTHING).retrieve(QUERY)
        return sorted(int(n.node.node_id[1:]) for n in found)

    assert ids(_f("tags", "b", "contains")) == [i for i in range(24) if i % 2]
    assert ids(_f("tags", ["a", "b"], "all")) == [i for i in range(24) if i % 2]
    assert ids(_f("missing", None, "is_empty")) == list(range(24))
    assert ids(_f("lang", "en"), condition="not") == [i for i in range(24) if i % 2]


def test_async_matches_sync(searchable):
    retriever = LatesearchRetriever(searchable, k=4, options=EVERYTHING)
    sync = [n.node.node_id for n in retriever.retrieve(QUERY)]
    found = asyncio.run(retriever.aretrieve(QUERY))
    assert [n.node.node_id for n in found] == sync


def test_a_query_engine_with_the_mock_llm_sees_the_retrieved_texts(indexes, monkeypatch):
    import llama_index.core

    monkeypatch.setattr(llama_index.core, "global_tokenizer", str.split)  # offline: no tiktoken
    filters = MetadataFilters(filters=[_f("lang", "de")])
    retriever = LatesearchRetriever(indexes["index"], k=2, filters=filters)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query(QUERY)
    expected = indexes["index"].search(QUERY, k=2, filter={"lang": "de"}, return_text=True)
    assert [n.node.node_id for n in response.source_nodes] == [h.doc_id for h in expected]
    for hit in expected:  # the mock LLM answers with its prompt: the retrieved context
        assert hit.text in str(response)
    assert QUERY in str(response)
    assert str(asyncio.run(engine.aquery(QUERY))) == str(response)
