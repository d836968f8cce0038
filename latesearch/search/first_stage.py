"""First stages: BM25 top-k' (paper Section 3.5) and the token-level ANN search over all
document embeddings (Section 3.6), both returning internal document indices."""

from __future__ import annotations

import numpy as np
import torch

from latesearch.indexing import IndexStore
from latesearch.indexing.components.ann import TokenANNIndex
from latesearch.indexing.components.bm25 import BM25Index
from latesearch.indexing.components.bm25_statistics import BM25Statistics


def bm25_ranked(
    store: IndexStore, bm25: BM25Index, queries: list[str], k: int,
    allowed: np.ndarray | None = None, statistics: BM25Statistics | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """(BM25 scores, doc indices) of each query's BM25 top-`k`, best first; scored with
    `statistics` (a whole collection's, this index a shard of it) where given."""
    out = []
    for hits in bm25.search(queries, k, allowed=allowed, statistics=statistics):
        idx = store.doc_indices([doc_id for doc_id, _ in hits])[0]
        out.append((np.array([s for _, s in hits], dtype=np.float32), idx))
    return out


def restrict(candidates: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """The candidates a filter allows; every allowed document when fewer than `k` of the
    candidates are (a selective filter must not empty the top-k)."""
    kept = np.intersect1d(candidates, allowed, assume_unique=True)  # both sorted, unique
    return kept if kept.size >= min(k, allowed.size) else allowed


def ann_candidates(
    ann: TokenANNIndex,
    Q: torch.Tensor,
    q_mask: torch.Tensor,
    *,
    k_prime: int | None,
    nprobe: int | None,
) -> list[np.ndarray]:
    """Unique doc indices owning any of the k' nearest document tokens of any query vector;
    all vectors of all queries go to faiss in one call."""
    vectors = Q.detach().to("cpu", torch.float32).numpy()
    mask = q_mask.detach().cpu().numpy()
    found = ann.candidates(vectors, k_prime=k_prime, nprobe=nprobe, q_mask=mask)
    return [np.asarray(c, dtype=np.int64) for c in found]
