"""ShardedIndex.delete(filter=...) and add(max_docs=...): the same documents go as from the
unsharded index; a bad filter, or one emptying a shard, changes no shard."""

from __future__ import annotations

import pytest

from latesearch import Index, ShardedIndex
from latesearch.errors import InputError

QUERIES = ["protein cell study", "late interaction search"]


def ids(index) -> set[str]:
    return {h.doc_id for h in index.search("data", k=100, mode="exact")}


def test_delete_by_filter_equals_the_unsharded_index(tmp_path, tiny_colbert, kit):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=24)
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2,
                                 progress=False, **kit.SETTINGS)  # fmt: skip
    whole = Index.build(corpus, tmp_path / "w", tiny_colbert, progress=False, **kit.SETTINGS)
    spec = {"lang": "de", "year": {"$lt": 2004}}
    summary = sharded.delete(filter=spec)
    expected = whole.delete(filter=spec)
    assert summary.deleted == expected.deleted > 0 and summary.docs == len(whole)
    assert ids(sharded) == ids(whole) and len(sharded) == len(whole)
    for a, b in zip(sharded.search(QUERIES, k=30, mode="exact"),
                    whole.search(QUERIES, k=30, mode="exact"), strict=True):  # fmt: skip
        assert [h.doc_id for h in a] == [h.doc_id for h in b]
    sharded.verify()
    assert len(ShardedIndex.load(tmp_path / "s", tiny_colbert)) == len(whole)


def test_refusals_change_no_shard(tmp_path, tiny_colbert, kit):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=12)
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2,
                                 progress=False, **kit.SETTINGS)  # fmt: skip
    before = ids(sharded)
    with pytest.raises(InputError) as caught:
        sharded.delete(filter={"year": {"$between": [1, 2]}})
    assert caught.value.field == "filter.year.$between"
    with pytest.raises(InputError, match="shard"):
        sharded.delete(filter={"lang": {"$in": ["en", "de"]}})  # every document
    extra = kit.write_corpus(tmp_path / "extra.jsonl", n=3, start=100)
    with pytest.raises(InputError) as caught:
        sharded.add(extra, max_docs=14)
    assert caught.value.field == "documents"
    assert ids(sharded) == before and len(sharded) == 12
    assert sharded.add(extra, max_docs=15).docs == 15
