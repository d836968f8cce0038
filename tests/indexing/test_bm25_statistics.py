"""BM25 over parts of a collection, scored with the whole collection's statistics, gives
the whole collection's scores (how a sharded index's BM25 equals one index's)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latesearch.errors import IndexCorruptError
from latesearch.indexing.components.bm25 import LENGTHS_FILE, BM25Config, BM25Index
from latesearch.indexing.components.bm25_statistics import BM25Statistics

WORDS = ("late interaction query document passage search retrieval model token vector "
         "index score rank cat dog house tree river city music protein cell gene").split()
QUERIES = ["protein cell gene", "the city music of music", "late interaction search", "zzz"]


def corpus(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"d{i}", " ".join(rng.choices(WORDS, k=rng.randint(1, 30)))) for i in range(n)]


def split(docs, parts: int, seed: int):
    rng = random.Random(seed)
    owner = [rng.randrange(parts) for _ in docs]
    return [[d for d, o in zip(docs, owner, strict=True) if o == p] for p in range(parts)]


@settings(max_examples=15, deadline=None)
@given(n=st.integers(8, 120), parts=st.integers(1, 4), seed=st.integers(0, 10**6),
       k1=st.sampled_from([0.0, 0.9, 1.5]), b=st.sampled_from([0.0, 0.4, 1.0]))  # fmt: skip
def test_parts_scored_with_the_whole_statistics_score_as_the_whole(n, parts, seed, k1, b):
    docs = corpus(n, seed)
    config = BM25Config(k1=k1, b=b)
    whole = BM25Index.build(docs, config)
    pieces = [BM25Index.build(p, config) for p in split(docs, parts, seed) if p]
    stats = BM25Statistics.combine([p.statistics(QUERIES) for p in pieces])
    assert (stats.n_docs, stats.total_length) == (n, int(whole.lengths.sum()))
    for q in QUERIES:
        expected = dict(whole.search([q], n)[0])
        got = {d: s for p in pieces for d, s in p.search([q], n, statistics=stats)[0]}
        assert got.keys() == expected.keys()
        np.testing.assert_allclose([got[d] for d in expected], list(expected.values()),
                                   rtol=1e-5)  # fmt: skip


def test_own_statistics_differ_and_filters_still_apply():
    docs = corpus(60, 3)
    whole = BM25Index.build(docs)
    a, b = (BM25Index.build(p) for p in split(docs, 2, 3))
    stats = BM25Statistics.combine([a.statistics(QUERIES), b.statistics(QUERIES)])
    own = dict(a.search([QUERIES[0]], 60)[0])
    rescored = dict(a.search([QUERIES[0]], 60, statistics=stats)[0])
    reference = dict(whole.search([QUERIES[0]], 60)[0])
    assert max(abs(own[d] - reference[d]) for d in own) > 1e-3  # the point of it
    assert all(abs(rescored[d] - reference[d]) < 1e-4 for d in rescored)
    full = a.search([QUERIES[0]], 60, statistics=stats)[0]
    for k in (1, 4, 9):  # the top k is the head of the whole ranking, ties by position
        assert a.search([QUERIES[0]], k, statistics=stats)[0] == full[:k]
    allowed = np.array([0, 2, 4])
    kept = a.search([QUERIES[0]], 60, allowed=allowed, statistics=stats)[0]
    assert {d for d, _ in kept} <= {a.doc_ids[i] for i in allowed}


def test_lengths_are_saved_and_checked(tmp_path):
    index = BM25Index.build(corpus(20, 1))
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert np.array_equal(loaded.lengths, index.lengths) and loaded.rescorable
    np.save(tmp_path / "bm25" / LENGTHS_FILE, np.zeros(3, dtype=np.int32))
    with pytest.raises(IndexCorruptError, match=LENGTHS_FILE):
        BM25Index.load(tmp_path / "bm25")
    (tmp_path / "bm25" / LENGTHS_FILE).unlink()  # a bm25/ saved before lengths were kept
    old = BM25Index.load(tmp_path / "bm25")
    assert old.lengths is None and not old.rescorable
    stats = BM25Statistics(1000, 10**4, {"protein": 3})
    assert old.search([QUERIES[0]], 5, statistics=stats) == old.search([QUERIES[0]], 5)


def test_only_lucene_is_rescored():
    docs = corpus(30, 2)
    robertson = BM25Index.build(docs, BM25Config(method="robertson"))
    assert not robertson.rescorable
    stats = BM25Statistics(10**5, 10**6, {})
    assert robertson.search(QUERIES[:1], 5, statistics=stats) == robertson.search(QUERIES[:1], 5)
