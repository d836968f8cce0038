"""Centroids of the token embeddings (PLAID's coarse codebook): spherical k-means with faiss
on a sample, and the assignment of every token to its nearest centroid.

The number of centroids is the power of two at or below 16 * sqrt(n_tokens), as in PLAID
(colbert-ai's indexer). Exact k-means and exact assignment cost n x n_centroids x dim
multiply-adds: about 2 PFLOP to assign 100M tokens to 2**17 centroids, hours on a few CPU
cores. So from `TREE_FROM` centroids on ("auto") both go through a two-level tree:

- k-means: a coarse k-means of the sample into about sqrt(n_centroids) groups, then a
  k-means inside each group, the centroids shared out in proportion to the group's size;
- assignment: each token is compared with the groups of centroids (a k-means of the
  centroids), then exactly with the centroids of its `TREE_NPROBE` best groups.

Both are matrix products (faiss, torch), a few microseconds a token. The tree's choice
agrees with the exact nearest centroid for most tokens; when it does not, the chosen
centroid is a near one and the residual codes the difference.
`assignment="exact"` forces the exhaustive versions; "hnsw" (a faiss HNSW graph over the
centroids) is kept for indexes built with it.
"""

from __future__ import annotations

import math

import faiss
import numpy as np
import torch

from latesearch.compressed.arrays import unit_rows
from latesearch.errors import ConfigError, InputError

ASSIGNMENTS = ("auto", "exact", "tree", "hnsw")  # IndexConfig.assignment
TREE_FROM = 1 << 15  # centroids from which "auto" trains and assigns through the tree
TREE_NPROBE = 4  # groups of centroids each token is compared with
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


def n_groups_for(n_centroids: int) -> int:
    """Groups of the two-level tree: the power of two at or above sqrt(n_centroids)."""
    return 2 ** math.ceil(math.log2(max(1.0, math.sqrt(n_centroids))))


def method_for(n_centroids: int, assignment: str) -> str:
    """"exact", "tree" or "hnsw": how `assignment` trains and assigns `n_centroids`."""
    if assignment not in ASSIGNMENTS:
        raise ConfigError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
    if assignment == "auto":
        return "tree" if n_centroids >= TREE_FROM else "exact"
    return assignment


def train_centroids(
    sample: np.ndarray,
    n_centroids: int,
    *,
    niter: int = 4,
    seed: int = 0,
    assignment: str = "auto",
) -> np.ndarray:
    """(n_centroids, dim) float32 unit centroids: spherical k-means on `sample` (n, dim),
    flat or through the two-level tree (see the module's docstring)."""
    x = np.ascontiguousarray(sample, dtype=np.float32)
    if len(x) < n_centroids:
        raise InputError(
            f"{len(x)} sampled embeddings are too few for {n_centroids} centroids",
            field="n_centroids",
        )
    method = method_for(n_centroids, assignment)
    if method == "tree":
        return _tree_kmeans(x, n_centroids, niter, seed)
    return kmeans(x, n_centroids, niter=niter, seed=seed, hnsw=method == "hnsw")


def kmeans(
    x: np.ndarray, k: int, *, niter: int, seed: int, hnsw: bool = False
) -> np.ndarray:
    """(k, dim) float32 unit centroids of faiss spherical k-means over all of `x`."""
    n, dim = x.shape
    clustering = faiss.Clustering(dim, k)
    clustering.niter = niter
    clustering.seed = seed
    clustering.spherical = True
    clustering.max_points_per_centroid = max(1, -(-n // k))  # use every point
    clustering.min_points_per_centroid = 1
    clustering.verbose = False
    clustering.train(np.ascontiguousarray(x, dtype=np.float32), _hnsw(dim) if hnsw else
                     faiss.IndexFlatIP(dim))  # fmt: skip
    return unit_rows(faiss.vector_to_array(clustering.centroids).reshape(k, dim))


def _tree_kmeans(x: np.ndarray, k: int, niter: int, seed: int) -> np.ndarray:
    """k centroids: a coarse k-means into n_groups_for(k) groups, then a k-means in each
    group with its share of k (largest remainders; at most its number of points)."""
    coarse = kmeans(x, min(n_groups_for(k), len(x)), niter=niter, seed=seed)
    group = nearest(coarse, x)
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group, minlength=len(coarse))
    shares = share_out(counts, k)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    parts = []
    for g in np.flatnonzero(shares):
        members = x[order[bounds[g] : bounds[g + 1]]]
        if shares[g] == len(members):
            parts.append(unit_rows(members))
        else:
            parts.append(kmeans(members, int(shares[g]), niter=niter, seed=seed + 1 + int(g)))
    return np.concatenate(parts).astype(np.float32)


def share_out(counts: np.ndarray, k: int) -> np.ndarray:
    """Integer shares of `k` in proportion to `counts` (largest remainders): each within 1
    of its exact share and at most its count; they sum to k (needs sum(counts) >= k)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total < k:
        raise InputError(f"{total} points are too few for {k} centroids", field="k")
    ideal = k * counts / total
    shares = np.minimum(np.floor(ideal).astype(np.int64), counts)
    left = k - int(shares.sum())
    if left > 0:
        room = shares < counts
        order = np.lexsort((np.arange(len(counts)), -(ideal - shares), ~room))
        shares[order[:left]] += 1
    return shares


def nearest(centroids: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(n,) int64 index of the largest inner product of each row of x among `centroids`,
    exactly (faiss flat search, a block at a time)."""
    return Assigner(centroids, "exact")(x)


class Assigner:
    """Nearest centroid (largest inner product) of token embeddings: exact, through the
    two-level tree, or through an HNSW graph over the centroids."""

    def __init__(self, centroids: np.ndarray, assignment: str = "auto", *, seed: int = 0) -> None:
        c = np.ascontiguousarray(centroids, dtype=np.float32)
        self.n_centroids, dim = c.shape
        self.method = method_for(self.n_centroids, assignment)
        self.approximate = self.method != "exact"
        self.tree: CentroidTree | None = None
        if self.method == "tree":
            self.tree = CentroidTree(c, seed=seed)
        else:
            self.index = _hnsw(dim) if self.method == "hnsw" else faiss.IndexFlatIP(dim)
            self.index.add(c)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n,) int64 centroid id of each row of `x` (n, dim)."""
        out = np.empty(len(x), dtype=np.int64)
        for start in range(0, len(x), ASSIGN_BLOCK):
            block = np.ascontiguousarray(x[start : start + ASSIGN_BLOCK], dtype=np.float32)
            if self.tree is not None:
                out[start : start + len(block)] = self.tree.assign(block)
            else:
                out[start : start + len(block)] = self.index.search(block, 1)[1][:, 0]
        if len(out) and out.min() < 0:  # HNSW found nothing: cannot happen with >= 1 centroid
            raise RuntimeError("centroid assignment failed for some embeddings")
        return out


class CentroidTree:
    """Centroids grouped by a k-means of the centroids themselves; a token is compared with
    the groups, then with the centroids of its `nprobe` best groups (torch products)."""

    def __init__(self, centroids: np.ndarray, *, seed: int = 0, nprobe: int = TREE_NPROBE):
        n = len(centroids)
        groups = kmeans(centroids, min(n_groups_for(n), n), niter=10, seed=seed)
        owner = nearest(groups, centroids)
        self.order = np.argsort(owner, kind="stable")  # centroid ids, grouped
        self.bounds = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(groups)))])
        self.groups = torch.from_numpy(groups)
        self.members = torch.from_numpy(np.ascontiguousarray(centroids[self.order]))
        self.nprobe = min(nprobe, len(groups))

    def assign(self, x: np.ndarray) -> np.ndarray:
        """(n,) int64 centroid id of each row of `x` (n, dim) float32."""
        xt = torch.from_numpy(x)
        n, p = len(x), self.nprobe
        probes = (xt @ self.groups.T).topk(p, dim=1).indices.reshape(-1).numpy()  # (n * p,)
        pairs = np.argsort(probes, kind="stable")  # (token, probe) pairs grouped by group
        tokens = torch.from_numpy(pairs // p)
        starts = np.searchsorted(probes[pairs], np.arange(len(self.bounds)))
        score = torch.empty(n * p)
        best = torch.empty(n * p, dtype=torch.int64)
        for g in np.flatnonzero(np.diff(starts)):
            a, b = int(starts[g]), int(starts[g + 1])
            lo, hi = int(self.bounds[g]), int(self.bounds[g + 1])
            if lo == hi:  # a group no centroid is nearest to
                score[a:b] = -math.inf
                best[a:b] = 0
                continue
            values, at = (xt[tokens[a:b]] @ self.members[lo:hi].T).max(dim=1)
            score[a:b], best[a:b] = values, at + lo
        by_token = torch.empty_like(score)
        by_token[torch.from_numpy(pairs)] = score
        rank = torch.empty_like(best)
        rank[torch.from_numpy(pairs)] = best
        pick = by_token.view(n, p).argmax(dim=1)
        chosen = rank.view(n, p).gather(1, pick[:, None])[:, 0].numpy()
        return self.order[chosen]


def _hnsw(dim: int) -> faiss.Index:
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index
