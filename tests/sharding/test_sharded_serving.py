"""`latesearch serve`'s service in front of a sharded index: the same API as one index."""

from __future__ import annotations

from latesearch import ShardedIndex
from latesearch.serving import SearchService


def test_a_sharded_index_is_served_like_one_index(tmp_path, tiny_colbert, kit):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=16)
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2, bm25=True,
                                 progress=False, **kit.SETTINGS)  # fmt: skip
    service = SearchService(sharded, api_key="secret")
    service.warm_up()
    health = service.handle("GET", "/health").body
    assert health["documents"] == 16 and health["shards"] == ["shard-000", "shard-001"]
    assert set(health["modes"]) == {"e2e", "exact", "rerank", "hybrid"}
    assert health["components"] == ["bm25"]
    body = service.handle("GET", "/search?q=protein+cell&k=4&mode=exact").body
    expected = sharded.search("protein cell", k=4, mode="exact")
    assert [h["doc_id"] for h in body["hits"]] == [h.doc_id for h in expected]
    hybrid = service.handle("GET", "/search?q=protein+cell&k=4&mode=hybrid").body
    assert [h["doc_id"] for h in hybrid["hits"]] == [
        h.doc_id for h in sharded.search("protein cell", k=4, mode="hybrid")]
    assert service.handle("GET", "/search?q=protein&mode=nope").body["field"] == "mode"
    missing = service.handle("GET", "/search?q=protein&mode=dense")  # no dense view
    assert missing.status == 400 and missing.body["field"] == "mode"
    added = service.write({"documents": [{"id": "new-1", "text": "protein cell gene drug"}]},
                          delete=False, key="secret")  # fmt: skip
    assert added.status == 200 and added.body["documents"] == 17
    hits = service.handle("GET", "/search?q=protein+cell+gene+drug&k=17&mode=exact").body["hits"]
    assert "new-1" in {h["doc_id"] for h in hits}
    gone = service.write({"ids": ["new-1", "d0"]}, delete=True, key="secret")
    assert gone.status == 200 and gone.body["documents"] == 15
    assert service.handle("GET", "/health").body["documents"] == 15
    by_filter = service.write({"filter": {"lang": "de", "year": {"$gte": 2003}}}, delete=True,
                              key="secret")  # fmt: skip
    expected = {"d3", "d5", "d11", "d13"}  # odd (de), year 2000 + i % 7 >= 2003
    assert by_filter.status == 200 and by_filter.body["summary"]["deleted"] == len(expected)
    left = service.handle("GET", "/search?q=protein&k=20&mode=exact").body["hits"]
    assert not expected & {h["doc_id"] for h in left} and len(left) == 15 - len(expected)
    bad = service.write({"filter": {"year": {"$gt": None}}}, delete=True, key="secret")
    assert bad.status == 400 and bad.body["field"] == "filter.year.$gt"
