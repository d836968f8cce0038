"""A sharded index answers like one index of the same documents: every exact mode, the
approximate ones at settings that keep every candidate, filters, rerank of given ids;
additions and deletions go to the shard that owns the id."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latesearch import Index, ShardedIndex
from latesearch.errors import ConfigError, InputError, UnknownDocumentError
from latesearch.sharding.manifest import SHARDS_MANIFEST
from latesearch.sharding.routing import shard_of

QUERIES = ["late interaction search", "protein cell gene", "music of the city"]
SETTINGS = {"keep_full": True, "n_centroids": 16, "chunk_size": 8, "group_size": 16}
EVERYTHING = {"ncells": 10**6, "centroid_score_threshold": -1e9, "ndocs": 10**6}
FILTER = {"lang": "de", "year": {"$gte": 2002}}


def assert_same_hits(ours, theirs):
    """Same scores rank by rank, and the same ids (in any order among equal scores)."""
    assert len(ours) == len(theirs)
    np.testing.assert_allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-4)
    groups = {}
    for hits, side in ((ours, 0), (theirs, 1)):
        for h in hits:
            groups.setdefault(round(h.score, 3), ([], []))[side].append(h.doc_id)
    assert all(sorted(a) == sorted(b) for a, b in groups.values())
    assert [h.rank for h in ours] == list(range(1, len(ours) + 1))


@pytest.mark.parametrize("filtered", [False, True])
@pytest.mark.parametrize("mode, options", [
    ("exact", {}), ("e2e", EVERYTHING), ("rerank", {"bm25_k": 1000}), ("rerank", {"bm25_k": 5}),
])  # fmt: skip
def test_search_equals_the_unsharded_index(sharded_pair, mode, options, filtered):
    sharded, whole = sharded_pair
    options = {**options, **({"filter": FILTER} if filtered else {})}
    for k in (1, 5, 40):
        ours = sharded.search(QUERIES, k=k, mode=mode, **options)
        theirs = whole.search(QUERIES, k=k, mode=mode, **options)
        for a, b in zip(ours, theirs, strict=True):
            assert_same_hits(a, b)
    one = sharded.search(QUERIES[0], k=3, mode=mode, return_text=True, **options)
    assert one[0].text and one[0].doc_id == whole.search(QUERIES[0], k=3, mode=mode,
                                                         **options)[0].doc_id  # fmt: skip


def test_default_search_scores_exactly_what_it_returns(sharded_pair):
    sharded, whole = sharded_pair
    hits = sharded.search(QUERIES[1], k=5)
    exact = {h.doc_id: h.score for h in whole.search(QUERIES[1], k=40, mode="exact")}
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(abs(exact[h.doc_id] - h.score) < 1e-4 for h in hits)


def test_rerank_of_given_ids(sharded_pair):
    sharded, whole = sharded_pair
    ids = ["d3", "d17", "d4", "d30", "d3", "d11"]
    assert_same_hits(sharded.rerank(QUERIES[0], ids), whole.rerank(QUERIES[0], ids))
    both = sharded.rerank(QUERIES[:2], [ids, ["d1", "d2"]], k=2, filter={"lang": "en"})
    assert_same_hits(both[1], whole.rerank(QUERIES[1], ["d1", "d2"], k=2, filter={"lang": "en"}))
    skipped = sharded.rerank(QUERIES[0], ["nope", "d5", "gone"], missing="skip")
    assert [h.doc_id for h in skipped] == ["d5"] and skipped.skipped == ["nope", "gone"]
    with pytest.raises(UnknownDocumentError):
        sharded.rerank(QUERIES[0], ["d5", "nope"])


def test_every_shard_is_an_ordinary_index_holding_the_ids_it_routes(sharded_pair):
    sharded, whole = sharded_pair
    manifest = json.loads((sharded.folder / SHARDS_MANIFEST).read_text())
    assert manifest["shards"] == ["shard-000", "shard-001", "shard-002"]
    held = []
    for i, name in enumerate(manifest["shards"]):
        shard = Index.load(sharded.folder / name)
        ids = list(shard.store.doc_ids)
        assert ids and all(shard_of(d, 3) == i for d in ids)
        assert shard.search(QUERIES[0], k=2)  # searchable alone
        held += ids
    assert sorted(held) == sorted(whole.store.doc_ids) and len(sharded) == len(whole)
    assert all(report is not None for report in sharded.verify())


def test_unknown_modes_and_bad_k_are_refused(sharded_pair):
    sharded, _ = sharded_pair
    with pytest.raises(InputError, match="mode"):
        sharded.search(QUERIES[0], mode="nope")
    with pytest.raises(InputError):
        sharded.search(QUERIES[0], k=0)
    with pytest.raises(InputError, match="fusion"):
        sharded.search(QUERIES[0], mode="hybrid", fusion="zscore")
    with pytest.raises(InputError, match="bm25_k"):
        sharded.search(QUERIES[0], mode="rerank", bm25_k=0)
    with pytest.raises(TypeError, match="bm25k"):
        sharded.search(QUERIES[0], mode="rerank", bm25k=10)


# Fused scores standardize float32 MaxSim and dense scores (tens, spread about one) whose
# last bits depend on how each index batches its products: a z-score moves by about 1e-6
# however near zero it is, so the tolerance is absolute. Documents whose fused scores are
# closer than it may swap ranks; every rank's score still agrees within it.
FUSED_ATOL = 1e-5


def assert_same_fused(ours, theirs):
    """The same documents with the same fused scores, ranked by score (equal scores in any
    order: one index orders them by position, a sharded one by id)."""
    assert len(ours) == len(theirs)
    mine, other = ({h.doc_id: h.score for h in hits} for hits in (ours, theirs))
    assert mine.keys() == other.keys()
    np.testing.assert_allclose([mine[i] for i in other], list(other.values()), rtol=0,
                               atol=FUSED_ATOL)  # fmt: skip
    np.testing.assert_allclose([h.score for h in ours], [h.score for h in theirs], rtol=0,
                               atol=FUSED_ATOL)  # fmt: skip


@pytest.mark.parametrize("filtered", [False, True])
def test_hybrid_equals_the_unsharded_index(sharded_pair, filtered):
    """Both sides merge exactly: BM25 scored with the whole collection's statistics. (RRF
    is compared where no rank is a tie: ties are ordered by position in one index.)"""
    sharded, whole = sharded_pair
    wanted = {**EVERYTHING, **({"filter": FILTER} if filtered else {})}
    for fusion, weight, k in (("score", 0.5, 5), ("score", 0.2, 40), ("rrf", 1.0, 40)):
        options = {**wanted, "fusion": fusion, "hybrid_weight": weight}
        ours = sharded.search(QUERIES, k=k, mode="hybrid", **options)
        theirs = whole.search(QUERIES, k=k, mode="hybrid", **options)
        for a, b in zip(ours, theirs, strict=True):
            assert_same_fused(a, b)
            assert [h.doc_id for h in a][:3] == [h.doc_id for h in b][:3]


def test_hybrid_over_one_shard_equals_the_index(tmp_path, tiny_colbert, kit):
    """One shard has the collection's BM25 statistics: every fusion and weight agree."""
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=24)
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=1, bm25=True,
                                 progress=False, **SETTINGS)  # fmt: skip
    whole = Index.build(corpus, tmp_path / "w", tiny_colbert, bm25=True, progress=False,
                        **SETTINGS)  # fmt: skip
    for fusion, weight in (("rrf", 0.5), ("score", 0.3), ("rrf", 0.0)):
        options = {**EVERYTHING, "fusion": fusion, "hybrid_weight": weight}
        ours = sharded.search(QUERIES, k=24, mode="hybrid", return_text=True, **options)
        theirs = whole.search(QUERIES, k=24, mode="hybrid", **options)
        for a, b in zip(ours, theirs, strict=True):
            assert_same_fused(a, b)
            assert all(h.text for h in a)


def test_add_and_delete_route_to_the_owning_shard(tmp_path, tiny_colbert, kit):
    write_corpus = kit.write_corpus
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=24)
    extra = write_corpus(tmp_path / "extra.jsonl", n=6, start=100, seed=9)
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2,
                                 progress=False, **SETTINGS)  # fmt: skip
    whole = Index.build(corpus, tmp_path / "w", tiny_colbert, progress=False, **SETTINGS)
    summary = sharded.add(extra)
    whole.add(extra, progress=False)
    assert summary.added == 6 and summary.docs == 30 and len(sharded) == 30
    with pytest.raises(UnknownDocumentError):
        sharded.delete(["d3", "never-there"])
    assert len(sharded) == 30  # nothing deleted
    assert sharded.delete(["d3", "d101", "never-there"], missing="skip").deleted == 2
    whole.delete(["d3", "d101"])
    for a, b in zip(sharded.search(QUERIES, k=30, mode="exact"),
                    whole.search(QUERIES, k=30, mode="exact"), strict=True):  # fmt: skip
        assert_same_hits(a, b)
    reopened = ShardedIndex.load(tmp_path / "s", tiny_colbert)
    assert len(reopened) == 28
    for i, name in enumerate(reopened.manifest.shards):
        ids = Index.load(tmp_path / "s" / name).store.doc_ids
        assert all(shard_of(d, 2) == i for d in ids)


def test_an_interrupted_build_resumes_shard_by_shard(tmp_path, tiny_colbert, monkeypatch, kit):
    write_corpus = kit.write_corpus
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=24)
    builds = []
    original = Index.build.__func__

    def failing(cls, *args, **kwargs):
        builds.append(args[1])
        if len(builds) == 2:
            raise KeyboardInterrupt
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Index, "build", classmethod(failing))
    with pytest.raises(KeyboardInterrupt):
        ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=3, progress=False,
                           **SETTINGS)  # fmt: skip
    assert not (tmp_path / "s").exists()
    with pytest.raises(Exception, match="interrupted"):
        ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=3, progress=False,
                           **SETTINGS)  # fmt: skip
    resumed = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=3,
                                 progress=False, resume=True, **SETTINGS)  # fmt: skip
    assert [p.name for p in builds] == ["shard-000", "shard-001", "shard-001", "shard-002"]
    fresh = ShardedIndex.build(corpus, tmp_path / "f", tiny_colbert, n_shards=3,
                               progress=False, **SETTINGS)  # fmt: skip
    for a, b in zip(resumed.search(QUERIES, k=24, mode="exact"),
                    fresh.search(QUERIES, k=24, mode="exact"), strict=True):  # fmt: skip
        assert_same_hits(a, b)
    assert not (tmp_path / "s.building").exists()


def test_bad_manifests_and_arguments_are_clear_errors(tmp_path, tiny_colbert, kit):
    write_corpus = kit.write_corpus
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=3)
    with pytest.raises(InputError, match="empty"):
        ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=8, progress=False)
    with pytest.raises(ConfigError, match="n_shards"):
        ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=0)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / SHARDS_MANIFEST).write_text(json.dumps({"shards": ["../elsewhere"]}))
    with pytest.raises(ConfigError, match="shards"):
        ShardedIndex.load(broken)
    (broken / SHARDS_MANIFEST).write_text(json.dumps({"shards": ["a"], "extra": 1}))
    with pytest.raises(ConfigError, match="extra"):
        ShardedIndex.load(broken)
    (broken / SHARDS_MANIFEST).write_text(json.dumps({"shards": ["a"]}))
    with pytest.raises(ConfigError, match="missing"):
        ShardedIndex.load(broken)


def test_a_resume_with_other_shards_or_another_collection_is_refused(tmp_path, tiny_colbert,
                                                                     monkeypatch, kit):  # fmt: skip
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=12)

    def interrupted(cls, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Index, "build", classmethod(interrupted))
    with pytest.raises(KeyboardInterrupt):
        ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2, progress=False)
    monkeypatch.undo()
    with pytest.raises(InputError, match="number of shards"):
        ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=3, resume=True)
    kit.write_corpus(corpus, n=13)
    with pytest.raises(InputError, match="another collection"):
        ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2, resume=True)


def test_adding_ids_already_held_changes_no_shard(sharded_pair):
    sharded, _ = sharded_pair
    before = len(sharded)
    with pytest.raises(InputError, match="already in the index"):
        sharded.add([{"_id": "d100", "text": "new one"}, {"_id": "d5", "text": "again"}])
    assert len(sharded) == before
    assert "d100" not in {h.doc_id for h in sharded.search("new one", k=40, mode="exact")}


@pytest.mark.parametrize("filtered", [False, True])
def test_dense_and_fused_search_equal_the_unsharded_index(tmp_path, tiny_colbert, kit, filtered):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=20)
    options = {**kit.SETTINGS, "dense": "pooled"}
    sharded = ShardedIndex.build(corpus, tmp_path / "s", tiny_colbert, n_shards=2,
                                 progress=False, **options)  # fmt: skip
    whole = Index.build(corpus, tmp_path / "w", tiny_colbert, progress=False, **options)
    wanted = {"filter": FILTER} if filtered else {}
    for k in (3, 20):
        ours = sharded.search(QUERIES, k=k, mode="dense", **wanted)
        for a, b in zip(ours, whole.search(QUERIES, k=k, mode="dense", **wanted), strict=True):
            assert_same_hits(a, b)
    for fusion, k in (("zscore", 3), ("zscore", 20), ("rrf", 20), ("score", 20)):
        fused = {**EVERYTHING, **wanted, "fusion": fusion}
        ours = sharded.search(QUERIES, k=k, mode="fused", **fused)
        for a, b in zip(ours, whole.search(QUERIES, k=k, mode="fused", **fused), strict=True):
            assert_same_fused(a, b)
    # at the defaults each shard's top 100 holds all its documents: the same answer
    narrow = {**wanted, "hybrid_weight": 0.7}
    assert_same_fused(sharded.search(QUERIES[0], k=5, mode="fused", **narrow),
                      whole.search(QUERIES[0], k=5, mode="fused", **narrow))
    assert {"dense", "fused"} <= set(sharded.describe()["modes"])
