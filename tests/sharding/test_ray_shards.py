"""Shards in Ray actors answer like shards in this process (and like one index)."""

from __future__ import annotations

import numpy as np

from latesearch import ShardedIndex

QUERIES = ["late interaction search", "protein cell gene", "music of the city"]


def test_ray_shards_equal_local_shards(ray_cluster, sharded_pair, tiny_colbert, kit, tmp_path):
    local, whole = sharded_pair
    remote = ShardedIndex.load(local.folder, tiny_colbert, ray="auto", replicas=2,
                               cpus_per_actor=0.25)
    try:
        for mode, options in (("exact", {}), ("e2e", kit.EVERYTHING), ("rerank", {}),
                              ("exact", {"filter": {"lang": "de"}})):  # fmt: skip
            ours = remote.search(QUERIES, k=7, mode=mode, **options)
            theirs = local.search(QUERIES, k=7, mode=mode, **options)
            for a, b in zip(ours, theirs, strict=True):
                assert [h.doc_id for h in a] == [h.doc_id for h in b]
                np.testing.assert_allclose([h.score for h in a], [h.score for h in b],
                                           atol=1e-5)  # fmt: skip
        for a, b in zip(remote.search(QUERIES, k=7, mode="hybrid", **kit.EVERYTHING),
                        local.search(QUERIES, k=7, mode="hybrid", **kit.EVERYTHING),
                        strict=True):  # fmt: skip
            assert [h.score for h in a] == [h.score for h in b]
        ids = ["d1", "d2", "d30", "nope"]
        got = remote.rerank(QUERIES[0], ids, missing="skip")
        assert got.skipped == ["nope"]
        assert [h.doc_id for h in got] == [h.doc_id for h in whole.rerank(QUERIES[0], ids[:3])]
        assert len(remote) == len(whole)
    finally:
        remote.close()


def test_ray_shards_route_writes_and_every_replica_sees_them(ray_cluster, tiny_colbert, kit,
                                                              tmp_path):  # fmt: skip
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=16)
    extra = kit.write_corpus(tmp_path / "extra.jsonl", n=4, start=50, seed=3)
    ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2, progress=False,
                       **kit.SETTINGS).close()  # fmt: skip
    remote = ShardedIndex.load(tmp_path / "s", tiny_colbert, ray="auto", replicas=2,
                               cpus_per_actor=0.25)
    try:
        assert remote.add(extra).added == 4
        assert remote.delete(["d0"]).deleted == 1
        for _ in range(2):  # both replicas of each shard answer in turn
            ids = {h.doc_id for h in remote.search("protein", k=19, mode="exact")}
            assert len(ids) == 19 and "d0" not in ids and {"d50", "d53"} <= ids
    finally:
        remote.close()
