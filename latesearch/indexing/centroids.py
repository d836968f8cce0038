"""Centroids of the token embeddings (PLAID's coarse codebook): spherical k-means with faiss
on a sample, and the assignment of every token to its nearest centroid.

The number of centroids is the power of two at or below 16 * sqrt(n_tokens), as in PLAID
(colbert-ai's indexer).
Exact assignment costs n_tokens x n_centroids x dim multiply-adds (about 2 PFLOP for 100M
tokens and 2**17 centroids), so from `HNSW_FROM` centroids on the assignment (and k-means'
own assignment step) searches a faiss HNSW graph over the centroids instead: approximate,
orders of magnitude cheaper; `assignment="exact"` forces the exact search.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from latesearch.errors import ConfigError, InputError

ASSIGNMENTS = ("auto", "exact", "hnsw")
HNSW_FROM = 1 << 13  # centroids from which "auto" assigns through an HNSW graph
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 40, 16
POINTS_PER_CENTROID = 16  # k-means training sample, per centroid
MIN_SAMPLE = 1 << 16
MAX_SAMPLE = 1 << 22
ASSIGN_BLOCK = 1 << 16


def n_centroids_for(n_tokens: int) -> int:
    """The power of two at or below 16 * sqrt(n_tokens), at most n_tokens (at least 1)."""
    if n_tokens < 1:
        raise InputError("no token embeddings to cluster", field="n_tokens")
    k = 2 ** math.floor(math.log2(16 * math.sqrt(n_tokens)))
    return max(1, min(k, 2 ** int(math.log2(n_tokens))))


def sample_size_for(n_tokens: int, n_centroids: int) -> int:
    """Tokens k-means trains on: 16 per centroid, within [65,536, 4M], at most all."""
    return min(n_tokens, max(MIN_SAMPLE, min(POINTS_PER_CENTROID * n_centroids, MAX_SAMPLE)))


def uses_hnsw(n_centroids: int, assignment: str) -> bool:
    if assignment not in ASSIGNMENTS:
        raise ConfigError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
    return assignment == "hnsw" or (assignment == "auto" and n_centroids >= HNSW_FROM)


def train_centroids(
    sample: np.ndarray,
    n_centroids: int,
    *,
    niter: int = 4,
    seed: int = 0,
    assignment: str = "auto",
) -> np.ndarray:
    """(n_centroids, dim) float32 unit centroids: spherical k-means on `sample` (n, dim)."""
    x = np.ascontiguousarray(sample, dtype=np.float32)
    n, dim = x.shape
    if n < n_centroids:
        raise InputError(
            f"{n} sampled embeddings are too few for {n_centroids} centroids", field="n_centroids"
        )
    clustering = faiss.Clustering(dim, n_centroids)
    clustering.niter = niter
    clustering.seed = seed
    clustering.spherical = True
    clustering.max_points_per_centroid = max(1, -(-n // n_centroids))  # use the whole sample
    clustering.min_points_per_centroid = 1
    clustering.verbose = False
    if uses_hnsw(n_centroids, assignment):
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    clustering.train(x, index)
    centroids = faiss.vector_to_array(clustering.centroids).reshape(n_centroids, dim)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return (centroids / np.maximum(norms, 1e-12)).astype(np.float32)


class Assigner:
    """Nearest centroid (largest inner product) of token embeddings: exact, or through an
    HNSW graph over the centroids."""

    def __init__(self, centroids: np.ndarray, assignment: str = "auto") -> None:
        c = np.ascontiguousarray(centroids, dtype=np.float32)
        self.n_centroids, dim = c.shape
        self.approximate = uses_hnsw(self.n_centroids, assignment)
        if self.approximate:
            self.index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            self.index.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            self.index = faiss.IndexFlatIP(dim)
        self.index.add(c)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n,) int64 centroid id of each row of `x` (n, dim)."""
        out = np.empty(len(x), dtype=np.int64)
        for start in range(0, len(x), ASSIGN_BLOCK):
            block = np.ascontiguousarray(x[start : start + ASSIGN_BLOCK], dtype=np.float32)
            _, ids = self.index.search(block, 1)
            out[start : start + len(block)] = ids[:, 0]
        if len(out) and out.min() < 0:  # HNSW found nothing: cannot happen with >= 1 centroid
            raise RuntimeError("centroid assignment failed for some embeddings")
        return out
