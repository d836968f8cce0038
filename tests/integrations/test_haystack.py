"""The Haystack retriever component against the real haystack-ai: documents, metadata,
Haystack filters, async, and a pipeline with Haystack's mock chat generator."""

from __future__ import annotations

import asyncio
import os

import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # offline: no telemetry
pytest.importorskip("haystack", reason="the [haystack] extra is not installed")

from haystack import Document, Pipeline  # noqa: E402
from haystack.components.builders import ChatPromptBuilder  # noqa: E402
from haystack.components.generators.chat import MockChatGenerator  # noqa: E402
from haystack.dataclasses import ChatMessage  # noqa: E402

from latesearch.errors import InputError  # noqa: E402
from latesearch.integrations.haystack import LatesearchRetriever, metadata_filter  # noqa: E402

from .conftest import EVERYTHING  # noqa: E402

QUERY = "late interaction search"
EN = {"field": "meta.lang", "operator": "==", "value": "en"}


def test_documents_are_the_index_hits(searchable):
    out = LatesearchRetriever(searchable, top_k=5, options=EVERYTHING).run(QUERY)["documents"]
    hits = searchable.search(QUERY, k=5, return_text=True, return_metadata=True, **EVERYTHING)
    assert all(isinstance(d, Document) for d in out)
    assert [(d.id, d.score, d.content) for d in out] == [(h.doc_id, h.score, h.text) for h in hits]
    assert out[0].meta == {"doc_id": hits[0].doc_id, "rank": 1, "title": hits[0].title,
                           **hits[0].metadata}  # fmt: skip


def test_filters_translate_and_apply(searchable):
    recent = {"operator": "AND", "conditions": [EN, {"field": "meta.year", "operator": ">=",
                                                     "value": 2003}]}  # fmt: skip
    retriever = LatesearchRetriever(searchable, top_k=30, filters=EN, options=EVERYTHING)
    assert len(retriever.run(QUERY)["documents"]) == 12
    both = retriever.run(QUERY, filters=recent, top_k=30)["documents"]
    assert both and all(d.meta["lang"] == "en" and d.meta["year"] >= 2003 for d in both)
    assert metadata_filter({"operator": "NOT", "conditions": [EN]}) == {
        "$not": {"$and": [{"lang": {"$eq": "en"}}]}}  # fmt: skip
    assert metadata_filter({"field": "meta.year", "operator": "not in", "value": [1]}) == {
        "year": {"$nin": [1]}}  # fmt: skip
    with pytest.raises(InputError, match="meta"):
        metadata_filter({"field": "content", "operator": "==", "value": "x"})
    with pytest.raises(InputError, match="operator"):
        metadata_filter({"field": "meta.x", "operator": "~", "value": "x"})


def test_async_matches_sync(searchable):
    retriever = LatesearchRetriever(searchable, top_k=4, options=EVERYTHING)
    sync = [d.id for d in retriever.run(QUERY)["documents"]]
    assert [d.id for d in asyncio.run(retriever.run_async(QUERY))["documents"]] == sync


def test_a_pipeline_with_the_mock_generator_sees_the_retrieved_texts(indexes):
    template = [ChatMessage.from_user(
        "Context:\n{% for d in documents %}[{{ d.id }}] {{ d.content }}\n{% endfor %}"
        "Question: {{ question }}")]  # fmt: skip
    pipeline = Pipeline()
    pipeline.add_component("retriever", LatesearchRetriever(indexes["index"], top_k=2))
    pipeline.add_component("prompt", ChatPromptBuilder(template=template,
                                                       required_variables="*"))  # fmt: skip
    pipeline.add_component("llm", MockChatGenerator())  # echoes the prompt
    pipeline.connect("retriever.documents", "prompt.documents")
    pipeline.connect("prompt.prompt", "llm.messages")
    result = pipeline.run({"retriever": {"query": QUERY, "filters": EN},
                           "prompt": {"question": QUERY}})  # fmt: skip
    answer = result["llm"]["replies"][0].text
    for hit in indexes["index"].search(QUERY, k=2, filter={"lang": "en"}, return_text=True):
        assert f"[{hit.doc_id}] {hit.text}" in answer
    assert answer.endswith(f"Question: {QUERY}")


def test_the_index_must_be_searchable():
    with pytest.raises(InputError, match="search method"):
        LatesearchRetriever("indexes/corpus")
