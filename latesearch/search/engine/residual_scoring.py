"""Stage 5: exact MaxSim of the surviving documents, from their residuals decompressed
(centroid + quantized residual, re-normalized) or, where the index keeps them, from the
uncompressed vectors.

On CPU with cosine similarity the survivors' vectors stay back to back (no padding): one
matrix product of all of them against the query's real tokens, then a maximum per document
and query token and a sum (`scoring.maxsim.segment_maxsim`). Elsewhere (CUDA, l2) the
padded kernel every other mode uses (`search.rerank.score_documents`). Both compute the
same dot products; scores agree with `mode="exact"` to float rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from latesearch.indexing import IndexStore
from latesearch.scoring.maxsim import segment_maxsim, token_scores
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
    if similarity != "cosine" or Q.device.type != "cpu" or docs.size == 0:
        scores = score_documents(
            store, Q, q_mask, docs, similarity=similarity, dtype=Q.dtype, timings=timings,
            source=source,
        )  # fmt: skip
        return scores[0].numpy()
    with timings.stage("gather"):
        vectors, lengths = store.flat(docs, source=source)
    with timings.stage("score"):
        q = Q[0][q_mask[0]].detach().to(torch.float32)
        out = segment_maxsim(token_scores(np.asarray(vectors), q), lengths)
    timings.n_candidates += docs.size
    return out
