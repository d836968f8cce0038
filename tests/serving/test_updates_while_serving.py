"""A server keeps answering from one consistent version of its index while another process
(here: another `Index` object on the same folder) publishes an update, and switches to the
new version, whole, on the next request."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from latesearch import Index
from latesearch.errors import StaleIndexError
from latesearch.serving import SearchService

from .conftest import build


@pytest.fixture
def served(tmp_path_factory, tiny_colbert):
    """A fresh index (30 documents, compressed, with bm25/) behind a warmed-up service."""
    index = build(tmp_path_factory, tiny_colbert, "served", bm25=True)
    service = SearchService(index)
    service.warm_up()
    return index, service


def rerank(service, ids):
    body = json.dumps({"query": "protein cell", "candidates": ids}).encode("utf-8")
    return service.handle("POST", "/rerank", body)


def test_service_switches_to_a_version_published_by_another_process(served, tiny_colbert):
    index, service = served
    before = {h["doc_id"]: h for h in service.handle("GET", "/search?q=river+city&k=30&mode=exact"
                                                    "&text=1").body["hits"]}  # fmt: skip
    Index.load(index.folder, tiny_colbert).delete(["d1", "d2", "d3"])

    health = service.handle("GET", "/health").body
    assert health["documents"] == 27
    response = rerank(service, ["d5", "d10", "d2"])
    assert response.status == 400 and "d2" in response.body["error"]
    fresh = Index.load(index.folder, tiny_colbert)
    ranked = fresh.rerank("protein cell", ["d5", "d10", "d20"])
    body = rerank(service, ["d5", "d10", "d20"]).body
    assert [h["doc_id"] for h in body["hits"]] == [h.doc_id for h in ranked]
    for mode in ("exact", "e2e", "rerank"):
        hits = service.handle("GET", f"/search?q=river+city&k=27&mode={mode}&text=1").body["hits"]
        assert {"d1", "d2", "d3"}.isdisjoint(h["doc_id"] for h in hits)
        for hit in hits:  # each hit carries its own document's text
            assert hit["text"] == before[hit["doc_id"]]["text"], mode


def test_an_index_object_reads_one_version_until_reloaded(served, tiny_colbert):
    index, _ = served
    expected = index.search("river city", k=30, mode="exact", return_text=True)
    Index.load(index.folder, tiny_colbert).delete(["d0"])
    with ThreadPoolExecutor(1) as pool:  # a new thread: no connection of its own yet
        hits = pool.submit(index.search, "river city", k=30, mode="exact",
                           return_text=True).result()  # fmt: skip
    assert [(h.doc_id, h.text) for h in hits] == [(h.doc_id, h.text) for h in expected]
    assert not index.store.is_current()
    fresh = index.reloaded()
    assert len(fresh) == 29 and fresh.model is index.model and fresh.store.is_current()


def test_a_component_of_a_replaced_version_is_not_loaded(tmp_path_factory, tiny_colbert):
    index = build(tmp_path_factory, tiny_colbert, "stale", bm25=True)
    Index.load(index.folder, tiny_colbert).delete(["d0"])
    with pytest.raises(StaleIndexError, match="load it again"):
        index.search("river city", k=3, mode="rerank")  # bm25/ is loaded lazily


def test_no_request_fails_while_updates_are_published(served, tiny_colbert, tmp_path):
    index, service = served
    texts = {h.doc_id: h.text for h in index.search("river", k=30, mode="exact",
                                                     return_text=True)}  # fmt: skip
    stop, seen = threading.Event(), []

    def client(n: int) -> None:
        paths = ["/search?q=river+city&k=10&text=1", "/search?q=cell&k=5&mode=rerank&text=1",
                 "/search?q=data&k=5&mode=exact&text=1", "/health"]  # fmt: skip
        while not stop.is_set():
            response = service.handle("GET", paths[n % len(paths)])
            seen.append(response.status)
            assert response.status == 200, response.body
            for hit in response.body.get("hits", []):
                assert hit["text"] == texts[hit["doc_id"]]

    writer = Index.load(index.folder, tiny_colbert)
    with ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(client, n) for n in range(4)]
        for doc_id in ("d7", "d8", "d9"):
            writer.delete([doc_id])
            time.sleep(0.05)
        stop.set()
        for done in clients:
            done.result()
    assert len(seen) > 8 and service.handle("GET", "/health").body["documents"] == 27
