"""Stage 5: exact MaxSim of the surviving documents, from their residuals decompressed
(centroid + quantized residual, re-normalized) or, where the index keeps them, from the
uncompressed vectors.

On CPU with cosine similarity the survivors' vectors stay back to back (no padding): they are
gathered, widened and multiplied against the query's real tokens a block at a time
(`VectorReader.vector_blocks`), then a maximum per document and query token and a sum
(`scoring.maxsim.segment_maxsim`). Elsewhere (CUDA, l2) the
padded kernel every other mode uses (`search.rerank.score_documents`). Both compute the
same dot products; scores agree with `mode="exact"` to float rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from latesearch.indexing import IndexStore
from latesearch.scoring.maxsim import segment_maxsim
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
    qT = Q[0][q_mask[0]].detach().to(torch.float32).T.contiguous()
    lengths = store.doclens[docs].astype(np.int64)
    sim = torch.empty((int(lengths.sum()), qT.shape[1]), dtype=torch.float32)
    blocks, done = store.vectors.vector_blocks(docs, source=source), 0
    while True:  # gathered and multiplied block by block, each while it is in cache
        with timings.stage("gather"):
            block = next(blocks, None)
        if block is None:
            break
        with timings.stage("score"):
            torch.mm(block, qT, out=sim[done : done + block.shape[0]])
        done += block.shape[0]
    with timings.stage("score"):
        out = segment_maxsim(sim, lengths)
    timings.n_candidates += docs.size
    return out
