"""Search over an index whose token vectors were pooled at build time (`pool_factor`):
every mode serves it, and exact scores are MaxSim over the stored pooled vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latesearch import Index
from latesearch.scoring import maxsim, pad_documents
from latesearch.search.modes import mode_names

QUERY = "protein cell study"


@pytest.fixture(scope="module")
def pooled_index(tmp_path_factory, collection_path, tiny_colbert):
    folder = tmp_path_factory.mktemp("pooled") / "index"
    return Index.build(collection_path, folder, tiny_colbert, pool_factor=2, dense="pooled",
                       bm25=True, n_centroids=16, progress=False)  # fmt: skip


def pooled_scores(index: Index, model) -> np.ndarray:
    """MaxSim of QUERY against every document's stored (pooled) vectors."""
    store = index.store
    Q = model.encode_queries([QUERY])[0]
    docs = [torch.from_numpy(store.flat([i], source="full")[0].astype(np.float32))
            for i in range(store.n_docs)]  # fmt: skip
    D, mask = pad_documents(docs)
    q_mask = Q.abs().sum(-1) > 0
    return maxsim(Q, D, mask, q_mask, model.config.similarity).numpy()


def test_the_index_holds_pooled_vectors(pooled_index, tiny_colbert):
    store = pooled_index.store
    assert store.manifest.config.codec.pool_factor == 2
    assert store.n_embeddings < store.summary.text_tokens
    assert pooled_index.verify().complete


@pytest.mark.parametrize("mode", mode_names())
def test_every_mode_searches_a_pooled_index(pooled_index, mode):
    hits = pooled_index.search(QUERY, k=5, mode=mode)
    ids = [h.doc_id for h in hits]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert set(ids) <= set(pooled_index.store.doc_ids)


def test_exact_and_rerank_score_the_pooled_vectors(pooled_index, tiny_colbert):
    scores = pooled_scores(pooled_index, tiny_colbert)
    ids = list(pooled_index.store.doc_ids)
    order = np.lexsort((np.arange(scores.size), -scores))[:5]
    hits = pooled_index.search(QUERY, k=5, mode="exact")
    assert [h.doc_id for h in hits] == [ids[i] for i in order]
    # the same fp16 vectors widened to float32 either way; sums may differ in order
    np.testing.assert_allclose([h.score for h in hits], scores[order], atol=1e-4)
    reranked = pooled_index.rerank(QUERY, [ids[i] for i in order[::-1]], k=5)
    np.testing.assert_allclose([h.score for h in reranked], scores[order], atol=1e-4)
