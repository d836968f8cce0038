"""Stage 1 and 2: the candidate documents of each query token's best centroids (their
scores: `centroid_scores`)."""

from __future__ import annotations

import numpy as np

from latesearch.compressed.ivf import InvertedFile


def candidate_documents(ivf: InvertedFile, cells: np.ndarray) -> np.ndarray:
    """Sorted unique documents holding a token of any of `cells`."""
    return ivf.docs_of(cells)
