"""Stage 1 and 2: query-token x centroid scores, and the candidate documents of each query
token's best centroids."""

from __future__ import annotations

import numpy as np
import torch

from latesearch.compressed.ivf import InvertedFile


def centroid_scores(centroids: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """(n_centroids, Lq) float32 scores of every centroid (n_centroids, dim) against the
    query's real tokens Q (Lq, dim). The product runs in torch: NumPy's bundled BLAS was
    much slower for these shapes on the project's CPU machine."""
    q = torch.from_numpy(np.ascontiguousarray(Q, dtype=np.float32))
    return (torch.from_numpy(centroids) @ q.T).numpy()


def top_cells(scores: np.ndarray, ncells: int) -> np.ndarray:
    """The unique centroids among each query token's `ncells` best."""
    n = scores.shape[0]
    if ncells >= n:
        return np.arange(n, dtype=np.int64)
    by_token = np.ascontiguousarray(scores.T)  # (Lq, n_centroids): each row contiguous
    if ncells == 1:
        return np.unique(by_token.argmax(axis=1))
    return np.unique(np.argpartition(-by_token, ncells - 1, axis=1)[:, :ncells])


def candidate_documents(ivf: InvertedFile, cells: np.ndarray) -> np.ndarray:
    """Sorted unique documents holding a token of any of `cells`."""
    return ivf.docs_of(cells)
