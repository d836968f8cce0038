"""Stage 1's scores: the query's tokens against the centroids, and the coarse level that
spares computing all of them on large indexes.

Every later stage reads query x centroid scores: the candidates' cells (each query token's
best centroids), the pruned interaction (centroids scoring at least t_cs), the full one
(the centroids of `ndocs` documents) and the lookup tables (the survivors' centroids). On a
small index they are one matrix product, (n_centroids, dim) x (dim, Lq). On a large one
(131,072 centroids at a million passages) that product, and the maxima over its rows, were
the largest part of stage 1; yet the stages read few of its rows. So from COARSE_FROM
centroids on (for now no index reaches it: it waits for its measurement at scale), a
`CoarseLevel` groups the centroids (spherical k-means over them, about
GROUP_SIZE a group, each group stored contiguously) and a query scores the group centres,
then only the centroids of each token's PROBE_GROUPS best groups; rows the later stages
ask for beyond those are computed when asked (`CentroidScores.rows`). Cells and the
pruning threshold see the probed centroids only: a centroid outside every token's best
groups is taken as neither a token's best cell nor above t_cs (as IVF search treats
unprobed lists).
"""

from __future__ import annotations

import numpy as np
import torch

from latesearch.compressed.ivf import ranges

# centroids from which the coarse level is used: beyond any index built so far until it is
# measured at 100,000 and 1M passages (on 8,192 SciFact centroids in 512 groups, 8 probed
# groups found 0.984 of each query token's best cell and 0.92 of the centroids above t_cs)
COARSE_FROM = 1 << 20
GROUP_SIZE = 128  # centroids per coarse group, on average
PROBE_GROUPS = 8  # groups probed per query token
TRAIN_PER_GROUP = 32  # centroids sampled per group to train the coarse k-means
NITER = 6


class CoarseLevel:
    """The centroids in groups: `centers` (n_groups, dim), unit length; `members` the
    centroid ids group after group, `offsets` (n_groups + 1) into it; `grouped` the
    centroids in that order (contiguous per group)."""

    def __init__(self, centers: np.ndarray, members: np.ndarray, offsets: np.ndarray,
                 centroids: np.ndarray) -> None:  # fmt: skip
        self.centers = torch.from_numpy(np.ascontiguousarray(centers, dtype=np.float32))
        self.members = members
        self.offsets = offsets
        self.grouped = torch.from_numpy(np.ascontiguousarray(centroids[members]))

    @classmethod
    def build(cls, centroids: np.ndarray, seed: int = 0) -> CoarseLevel:
        """Spherical k-means (faiss) of the centroids into n_centroids / GROUP_SIZE groups,
        trained on a sample, then every centroid assigned to its best centre."""
        import faiss

        n, dim = centroids.shape
        n_groups = max(1, n // GROUP_SIZE)
        x = np.ascontiguousarray(centroids, dtype=np.float32)
        kmeans = faiss.Kmeans(dim, n_groups, niter=NITER, spherical=True, seed=seed,
                              max_points_per_centroid=TRAIN_PER_GROUP, min_points_per_centroid=1,
                              verbose=False)  # fmt: skip
        kmeans.train(x)
        _, group = kmeans.index.search(x, 1)
        group = group[:, 0].astype(np.int64)
        members = np.argsort(group, kind="stable")
        offsets = np.zeros(n_groups + 1, dtype=np.int64)
        np.cumsum(np.bincount(group, minlength=n_groups), out=offsets[1:])
        return cls(kmeans.centroids, members, offsets, x)

    def probe(self, q: torch.Tensor, groups: int) -> np.ndarray:
        """Positions (into `members` / `grouped`) of the centroids of each query token's
        `groups` best groups, q (Lq, dim): ascending, unique."""
        n_groups = self.centers.shape[0]
        if groups >= n_groups:
            return np.arange(self.offsets[-1], dtype=np.int64)
        best = torch.topk(q @ self.centers.T, groups, dim=1).indices  # (Lq, groups)
        probed = np.unique(best.numpy())
        return ranges(self.offsets[probed], self.offsets[probed + 1])


class CentroidScores:
    """One query's real tokens q (Lq, dim) against the centroids (n_centroids, dim):
    `matrix` (n_centroids, Lq) float32, whose rows are valid where `known`. `probed`: the
    centroids stage 1 looked at (all of them without a coarse level)."""

    def __init__(self, centroids: np.ndarray, q: np.ndarray,
                 coarse: CoarseLevel | None = None) -> None:  # fmt: skip
        self.centroids = torch.from_numpy(centroids)
        self.q = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32))
        n = centroids.shape[0]
        if coarse is None:
            # torch: NumPy's bundled BLAS was much slower for these shapes on CPU
            self.matrix = (self.centroids @ self.q.T).numpy()
            self.known = np.ones(n, dtype=bool)
            self.probed = np.arange(n, dtype=np.int64)
            self._probed_rows = self.matrix
            return
        self.matrix = np.empty((n, self.q.shape[0]), dtype=np.float32)  # untouched: free
        self.known = np.zeros(n, dtype=bool)
        at = coarse.probe(self.q, PROBE_GROUPS)
        self.probed = coarse.members[at]
        rows = coarse.grouped.index_select(0, torch.from_numpy(at)) @ self.q.T
        self._probed_rows = rows.numpy()
        self.matrix[self.probed] = self._probed_rows
        self.known[self.probed] = True

    @classmethod
    def of_matrix(cls, matrix: np.ndarray) -> CentroidScores:
        """Scores already computed for every centroid, (n_centroids, Lq)."""
        out = cls.__new__(cls)
        out.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        out.known = np.ones(matrix.shape[0], dtype=bool)
        out.probed = np.arange(matrix.shape[0], dtype=np.int64)
        out._probed_rows = out.matrix
        return out

    def ensure(self, ids: np.ndarray) -> np.ndarray:
        """`matrix`, with the rows of centroids `ids` computed where they were not."""
        if self.probed.size == self.known.size:  # every centroid scored in stage 1
            return self.matrix
        missing = ids[~self.known[ids]]
        if missing.size:
            missing = np.unique(missing)
            rows = self.centroids.index_select(0, torch.from_numpy(missing)) @ self.q.T
            self.matrix[missing] = rows.numpy()
            self.known[missing] = True
        return self.matrix

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids), Lq) the scores of centroids `ids`."""
        return np.take(self.ensure(ids), ids, axis=0)

    def top_cells(self, ncells: int) -> np.ndarray:
        """The unique centroids among each query token's `ncells` best (of the probed)."""
        n = self.probed.size
        if ncells >= n:
            return np.unique(self.probed)
        by_token = np.ascontiguousarray(self._probed_rows.T)  # (Lq, n): rows contiguous
        if ncells == 1:
            at = by_token.argmax(axis=1)
        else:
            at = np.argpartition(-by_token, ncells - 1, axis=1)[:, :ncells]
        return np.unique(self.probed[at])

    def best(self) -> np.ndarray:
        """(n_centroids,) each centroid's best score over the query tokens (-inf where
        not probed): a running maximum over the few query-token columns."""
        rows = self._probed_rows
        top = rows[:, 0].copy()
        for j in range(1, rows.shape[1]):
            np.maximum(top, rows[:, j], out=top)
        if rows is self.matrix:  # every centroid, in order
            return top
        out = np.full(self.known.size, -np.inf, dtype=np.float32)
        out[self.probed] = top
        return out
