"""Ranking scored documents: the one top-k every search mode ends with."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, doc_indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best (scores, doc indices), best first; ties go to the lower doc index, so
    every search mode ranks equal scores the same way."""
    order = np.lexsort((doc_indices, -scores))[:k]
    return scores[order], doc_indices[order]
