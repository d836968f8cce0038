"""The three search modes agree with brute force and with each other."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch.errors import InputError
from latesearch.indexing.components.bm25 import BM25Index

QUERIES = ["late interaction search", "protein cell study", "music of the city"]


@pytest.mark.parametrize("query", QUERIES)
def test_exact_equals_brute_force(tiny_index, collection_path, tiny_colbert, brute, query):
    ids, texts = brute.read_docs(collection_path)
    hits = tiny_index.search(query, k=5, mode="exact")
    assert [h.doc_id for h in hits] == brute.top(tiny_colbert, query, ids, texts, 5)


def test_exact_streams_in_blocks(tiny_index):
    whole = tiny_index.search(QUERIES, k=7, mode="exact")
    tiny_index.searcher.max_tokens = 30  # one or two documents per block
    try:
        blocks = tiny_index.search(QUERIES, k=7, mode="exact")
    finally:
        tiny_index.searcher.max_tokens = 1 << 18
    for a, b in zip(whole, blocks, strict=True):
        assert [h.doc_id for h in a] == [h.doc_id for h in b]


def test_rerank_mode_is_exact_restricted_to_bm25(tiny_index):
    bm25 = BM25Index.load(tiny_index.folder / "bm25")
    full = tiny_index.search(QUERIES, k=len(tiny_index), mode="exact")
    got = tiny_index.search(QUERIES, k=4, mode="rerank", bm25_k=10)
    for cands, everything, hits in zip(bm25.search(QUERIES, 10), full, got, strict=True):
        allowed = {doc_id for doc_id, _ in cands}
        expected = [h for h in everything if h.doc_id in allowed][:4]
        assert [h.doc_id for h in hits] == [h.doc_id for h in expected]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in expected], atol=1e-5)


def test_e2e_flat_equals_exact(tiny_index):
    assert tiny_index.searcher.ann.kind == "flat"
    for query in QUERIES:
        e2e = tiny_index.search(query, k=5)
        exact = tiny_index.search(query, k=5, mode="exact")
        assert [h.doc_id for h in e2e] == [h.doc_id for h in exact]
    assert tiny_index.last_timings.mode == "exact"


def test_batch_equals_single(tiny_index):
    for mode in ("e2e", "rerank", "exact"):
        batch = tiny_index.search(QUERIES, k=5, mode=mode, batch_size=2)
        assert len(batch) == len(QUERIES)
        for query, hits in zip(QUERIES, batch, strict=True):
            single = tiny_index.search(query, k=5, mode=mode)
            assert [h.doc_id for h in hits] == [h.doc_id for h in single]
            np.testing.assert_allclose(
                [h.score for h in hits], [h.score for h in single], atol=1e-5
            )


def test_hits_and_timings(tiny_index, collection_path, brute):
    ids, texts = brute.read_docs(collection_path)
    hits = tiny_index.search("protein cell", k=3, mode="exact", return_text=True)
    assert [h.rank for h in hits] == [1, 2, 3]
    for hit in hits:
        assert hit.title is not None and hit.text in texts[ids.index(hit.doc_id)]
        assert set(hit.to_dict()) == {"doc_id", "score", "rank", "bounded_score", "title", "text"}
    keys = {"doc_id", "score", "rank", "bounded_score"}  # MaxSim hits: score per query token
    assert set(tiny_index.search("protein", k=1)[0].to_dict()) == keys
    t = tiny_index.last_timings
    assert t.n_queries == 1 and t.total >= t.encode + t.candidates > 0


def test_e2e_ivfpq_finds_exact_top(tmp_path, tiny_colbert, brute):
    from latesearch import Index
    from latesearch.indexing.components.ann import ANNConfig

    index = Index.build(
        brute.write_collection(tmp_path / "c.jsonl", n=90, seed=1), tmp_path / "ivf", tiny_colbert,
        progress=False, precision=32, nbits=None,
        ann_config=ANNConfig(n_partitions=8, flat_below=624, train_sample=600),
    )  # fmt: skip
    assert index.searcher.ann.kind == "ivfpq"
    for query in QUERIES:
        e2e = index.search(query, k=5, nprobe=8, k_prime=200)
        exact = index.search(query, k=5, mode="exact")
        assert [h.doc_id for h in e2e] == [h.doc_id for h in exact]


def test_bad_search_arguments(tiny_index):
    from latesearch.errors import InputError

    for kwargs in ({"mode": "bm25"}, {"k": 0}, {"k_prime": 0}, {"nprobe": -1}, {"bm25_k": 0},
                   {"mode": "rerank", "bm25_k": 1.5}):  # fmt: skip
        with pytest.raises(InputError):
            tiny_index.search("late search", **kwargs)
    with pytest.raises(InputError):
        tiny_index.search(["late search", ""])


@pytest.mark.parametrize("query", ["\ud800 x", "a\x00b", "bell\x07"])
def test_queries_that_are_not_text_are_refused_before_the_tokenizer(tiny_index, query):
    with pytest.raises(InputError, match="not text"):
        tiny_index.search(query, k=3, mode="exact")
