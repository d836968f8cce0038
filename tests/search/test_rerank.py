"""Re-ranking given candidates (paper Section 3.5) over the on-disk index."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch.errors import InputError
from latesearch.indexing import UnknownDocumentError
from latesearch.search.results import Hits


def test_rerank_equals_direct_maxsim(tiny_index, collection_path, tiny_colbert, brute):
    ids, texts = brute.read_docs(collection_path)
    chosen = [5, 17, 3, 30, 8, 22]
    hits = tiny_index.rerank("protein cell study", [ids[i] for i in chosen])
    expected = brute.scores(tiny_colbert, "protein cell study", [texts[i] for i in chosen])
    by_id = {ids[i]: s for i, s in zip(chosen, expected, strict=True)}
    assert isinstance(hits, Hits) and len(hits) == len(chosen)
    assert [h.rank for h in hits] == list(range(1, len(chosen) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        assert hit.score == pytest.approx(by_id[hit.doc_id], abs=1e-4)
    top = max(by_id, key=by_id.get)
    assert hits[0].doc_id == top


def test_rerank_k_and_duplicates(tiny_index):
    hits = tiny_index.rerank("late search", ["d1", "d2", "d1", "d3"], k=2)
    assert len(hits) == 2 and len({h.doc_id for h in hits}) == 2
    assert tiny_index.last_timings.n_candidates == 3


def test_unknown_ids_raise_or_skip(tiny_index):
    with pytest.raises(UnknownDocumentError, match="nope") as err:
        tiny_index.rerank("late search", ["d1", "nope"])
    assert (err.value.field, err.value.doc_id) == ("candidates", "nope")
    hits = tiny_index.rerank("late search", ["d1", "nope", "d2"], missing="skip")
    assert sorted(h.doc_id for h in hits) == ["d1", "d2"]
    assert hits.skipped == ["nope"]


def test_rerank_batch_matches_single(tiny_index):
    lists = [["d1", "d2", "d9"], ["d4", "d0"]]
    batch = tiny_index.rerank(["late search", "city music"], lists)
    for query, ids, got in zip(["late search", "city music"], lists, batch, strict=True):
        single = tiny_index.rerank(query, ids)
        assert [h.doc_id for h in got] == [h.doc_id for h in single]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in single], atol=1e-5)


def test_rerank_bad_input(tiny_index):
    with pytest.raises(InputError):
        tiny_index.rerank("", ["d1"])
    with pytest.raises(InputError):
        tiny_index.rerank(["a", "b"], [["d1"]])
    assert tiny_index.rerank("late search", []) == []


def test_rerank_in_small_mini_batches_matches(tiny_index):
    ids = [f"d{i}" for i in range(0, 40, 2)]
    whole = tiny_index.rerank("protein cell study", ids)
    tiny_index.searcher.max_tokens = 30  # one or two documents per gathered mini-batch
    try:
        parts = tiny_index.rerank("protein cell study", ids)
    finally:
        tiny_index.searcher.max_tokens = 1 << 18
    assert [h.doc_id for h in parts] == [h.doc_id for h in whole]
    np.testing.assert_allclose([h.score for h in parts], [h.score for h in whole], atol=1e-5)
