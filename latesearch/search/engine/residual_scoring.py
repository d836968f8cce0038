"""Stage 5: exact MaxSim of the surviving documents, from their residuals decompressed
(centroid + quantized residual, re-normalized) or, where the index keeps them, from the
uncompressed vectors; the same kernel as every other mode, so scores agree across modes."""

from __future__ import annotations

import numpy as np
import torch

from latesearch.indexing import IndexStore
from latesearch.search.rerank import score_documents
from latesearch.search.timing import SearchTimings


def exact_scores(
    store: IndexStore,
    Q: torch.Tensor,
    q_mask: torch.Tensor,
    docs: np.ndarray,
    *,
    similarity: str,
    timings: SearchTimings,
    source: str = "auto",
) -> np.ndarray:
    """(n_docs,) MaxSim scores of one query Q (1, Lq, dim) against `docs`."""
    scores = score_documents(
        store, Q, q_mask, docs, similarity=similarity, dtype=Q.dtype, timings=timings,
        source=source,
    )  # fmt: skip
    return scores[0].numpy()
