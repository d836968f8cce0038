"""Hybrid search: the fusion of two rankings (RRF, normalized scores), and mode="hybrid"
on compressed and uncompressed indexes, through the CLI and HTTP option names."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch.errors import InputError
from latesearch.search.fusion import RRF_K, fuse

from .test_filtering import QUERY


def ranked(docs, scores=None):
    docs = np.array(docs, dtype=np.int64)
    return (np.array(scores if scores is not None else -np.arange(docs.size), np.float32), docs)


def test_rrf_sums_reciprocal_ranks():
    scores, docs = fuse(ranked([3, 1, 2]), ranked([1, 4]), k=10)
    expected = {3: 0.5 / (RRF_K + 1), 1: 0.5 / (RRF_K + 2) + 0.5 / (RRF_K + 1),
                2: 0.5 / (RRF_K + 3), 4: 0.5 / (RRF_K + 2)}  # fmt: skip
    assert docs.tolist() == [1, 3, 4, 2]
    assert scores.tolist() == pytest.approx([expected[d] for d in docs.tolist()])


def test_score_fusion_normalizes_each_side_and_weights_them():
    colbert = ranked([7, 8, 9], [30.0, 20.0, 10.0])  # normalized 1, 0.5, 0
    bm25 = ranked([9, 7], [4.0, 2.0])  # normalized 1, 0
    scores, docs = fuse(colbert, bm25, k=2, fusion="score", weight=0.25)
    # 7: .25*1 + .75*0 = .25; 8: .25*.5 = .125; 9: .25*0 + .75*1 = .75
    assert docs.tolist() == [9, 7] and scores.tolist() == pytest.approx([0.75, 0.25])
    assert fuse(colbert, bm25, k=3, weight=1.0)[1].tolist() == [7, 8, 9]  # ColBERT alone
    assert fuse(ranked([]), ranked([]), k=3)[1].size == 0


@pytest.mark.parametrize("fusion", ["rrf", "score"])
@pytest.mark.parametrize("which", [0, 1], ids=["compressed", "uncompressed"])
def test_hybrid_mode_fuses_bm25_and_end_to_end(metadata_indexes, fusion, which):
    index = metadata_indexes[which]
    hits = index.search(QUERY, k=5, mode="hybrid", fusion=fusion, hybrid_weight=0.3)
    store = index.store

    def as_ranked(pairs):
        ids = [doc_id for doc_id, _ in pairs]
        return np.array([s for _, s in pairs], np.float32), store.doc_indices(ids)[0]

    dense = as_ranked([(h.doc_id, h.score) for h in index.search(QUERY, k=100, mode="e2e")])
    lexical = as_ranked(index.searcher.bm25.search([QUERY], 100)[0])
    expected = fuse(dense, lexical, 5, fusion=fusion, weight=0.3)
    assert [h.doc_id for h in hits] == [store.doc_ids[i] for i in expected[1]]
    assert [h.score for h in hits] == pytest.approx(expected[0].tolist())


def test_hybrid_with_a_filter_and_bad_options(metadata_indexes):
    compressed, _ = metadata_indexes
    hits = compressed.search(QUERY, k=5, mode="hybrid", filter={"lang": "de"},
                             return_metadata=True)  # fmt: skip
    assert hits and all(h.metadata["lang"] == "de" for h in hits)
    with pytest.raises(InputError, match="fusion"):
        compressed.search(QUERY, mode="hybrid", fusion="max")
    with pytest.raises(InputError, match="hybrid_weight"):
        compressed.search(QUERY, mode="hybrid", hybrid_weight=2)
