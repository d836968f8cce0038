"""A sharded build with `pool_factor` pools every shard, and additions routed to a shard
are pooled the same way."""

from __future__ import annotations

import numpy as np

from latesearch import ShardedIndex
from latesearch.indexing import IndexStore
from latesearch.indexing.pooling import pooled_count, token_spans


def pooled_shards(folder):
    return [IndexStore.open(p.parent) for p in sorted(folder.glob("*/manifest.json"))]


def test_every_shard_is_pooled_and_stays_pooled(tmp_path, tiny_colbert, kit):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=24)
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2,
                                 pool_factor=2, progress=False, **kit.SETTINGS)  # fmt: skip
    hits = sharded.search("late interaction search", k=5, mode="exact")
    assert len({h.doc_id for h in hits}) == 5
    sharded.add(kit.write_corpus(tmp_path / "more.jsonl", n=6, start=24, seed=2))
    shards = pooled_shards(tmp_path / "s")
    assert len(shards) == 2 and sum(s.n_docs for s in shards) == 30
    for store in shards:
        assert store.manifest.config.codec.pool_factor == 2
        for doc in range(store.n_docs):
            spans = token_spans(store, doc)
            n = sum(len(s) for s in spans)
            assert len(spans) == store.doclens[doc] == pooled_count(n, 2)
            assert sorted(np.concatenate(spans).tolist()) == list(range(n))
        assert store.verify().complete
        store.close()
