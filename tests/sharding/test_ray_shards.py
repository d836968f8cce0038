"""Shards in Ray actors answer like shards in this process (and like one index)."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch import Index, ShardedIndex
from latesearch.errors import ConfigError

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


def test_shards_built_at_once_in_ray_tasks_equal_shards_built_in_turn(
    ray_cluster, sharded_pair, tiny_colbert, kit, tmp_path
):
    local, whole = sharded_pair
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl")  # the fixture's corpus
    built = ShardedIndex.build(corpus, tmp_path / "parallel", tiny_colbert, n_shards=3,
                               bm25=True, progress=False, ray="auto", parallel_shards=True,
                               **kit.SETTINGS)  # fmt: skip
    try:
        for name in built.manifest.shards:
            ours, theirs = (Index.load(f / name) for f in (built.folder, local.folder))
            assert list(ours.store.doc_ids) == list(theirs.store.doc_ids)
            every = np.arange(ours.store.n_docs)
            ours_codes, _ = ours.store.vectors.codes(every)
            theirs_codes, _ = theirs.store.vectors.codes(every)
            assert np.mean(ours_codes == theirs_codes) > 0.99
            assert ours.components == theirs.components == ["bm25"]
        for mode in ("exact", "rerank"):
            for a, b in zip(built.search(QUERIES, k=5, mode=mode),
                            whole.search(QUERIES, k=5, mode=mode), strict=True):  # fmt: skip
                assert [h.doc_id for h in a] == [h.doc_id for h in b]
    finally:
        built.close()
    with pytest.raises(ConfigError, match="ray"):
        ShardedIndex.build(corpus, tmp_path / "x", tiny_colbert, n_shards=2, progress=False,
                           parallel_shards=True, **kit.SETTINGS)  # fmt: skip
