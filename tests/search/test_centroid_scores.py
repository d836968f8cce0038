"""Stage 1's centroid scores: the coarse level over the centroids probes groups, computes
other rows when asked, and leaves the engine exhaustive when it probes every group."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch import Index
from latesearch.search.engine import centroid_scores as cs
from latesearch.search.engine.centroid_scores import CentroidScores, CoarseLevel

EVERYTHING = {"ncells": 10**6, "centroid_score_threshold": -1e9, "ndocs": 10**6}


def unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_coarse_scores_are_the_full_products_where_computed(monkeypatch):
    rng = np.random.default_rng(0)
    centroids, q = unit(rng, 2048), unit(rng, 5)
    monkeypatch.setattr(cs, "GROUP_SIZE", 64)
    monkeypatch.setattr(cs, "PROBE_GROUPS", 2)
    coarse = CoarseLevel.build(centroids)
    assert coarse.centers.shape[0] == 32
    assert np.array_equal(np.sort(coarse.members), np.arange(2048))
    full, part = CentroidScores(centroids, q), CentroidScores(centroids, q, coarse)
    assert 0 < part.probed.size < 2048 and part.known.sum() == part.probed.size
    np.testing.assert_allclose(part.matrix[part.probed], full.matrix[part.probed], atol=1e-5)
    # best is -inf outside the probed centroids, the full maximum inside
    best = part.best()
    assert np.isneginf(best[~part.known]).all()
    np.testing.assert_allclose(best[part.probed], full.best()[part.probed], atol=1e-5)
    # each token's best cell among the probed ones
    cells = part.top_cells(1)
    assert set(cells.tolist()) <= set(part.probed.tolist())
    # rows asked for beyond the probed ones are computed
    ids = np.array([0, 5, 2047, 5])
    np.testing.assert_allclose(part.rows(ids), full.matrix[ids], atol=1e-5)
    assert part.known[ids].all()


def test_probing_every_group_is_the_full_computation(monkeypatch):
    rng = np.random.default_rng(1)
    centroids, q = unit(rng, 512), unit(rng, 3)
    monkeypatch.setattr(cs, "GROUP_SIZE", 64)
    monkeypatch.setattr(cs, "PROBE_GROUPS", 8)
    part = CentroidScores(centroids, q, CoarseLevel.build(centroids))
    full = CentroidScores(centroids, q)
    assert part.known.all()
    np.testing.assert_array_equal(part.top_cells(2), full.top_cells(2))
    np.testing.assert_allclose(part.best(), full.best(), atol=1e-5)


@pytest.mark.parametrize("probe", [1, 10**6])
def test_engine_with_a_coarse_level(tmp_path, tiny_colbert, brute, monkeypatch, probe):
    """Forced onto a tiny index: probing every group keeps the engine exhaustive at settings
    that keep every candidate; probing one group still returns exactly scored documents."""
    monkeypatch.setattr(cs, "GROUP_SIZE", 4)
    monkeypatch.setattr(cs, "PROBE_GROUPS", probe)
    monkeypatch.setattr("latesearch.search.engine.pipeline.COARSE_FROM", 1)
    corpus = brute.write_collection(tmp_path / "corpus.jsonl", n=60, seed=2)
    index = Index.build(corpus, tmp_path / "index", tiny_colbert, progress=False,
                        keep_full=False, n_centroids=32)  # fmt: skip
    assert index.searcher.engine.coarse is not None
    for query in ("late interaction search", "river data"):
        hits = index.search(query, k=5, **EVERYTHING)
        exact = index.search(query, k=5, mode="exact")
        if probe > 1:
            assert [h.doc_id for h in hits] == [h.doc_id for h in exact]
        again = index.rerank(query, [h.doc_id for h in hits])
        assert [h.doc_id for h in hits] == [h.doc_id for h in again]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in again],
                                   atol=1e-4)  # fmt: skip
