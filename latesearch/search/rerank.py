"""Exact MaxSim re-ranking of candidate documents gathered from the on-disk index
(paper Section 3.5): pad to the longest, one batched product per mini-batch, max over
document tokens, sum over query tokens, sort."""

from __future__ import annotations

import numpy as np
import torch

from latesearch.indexing import IndexStore
from latesearch.scoring import maxsim
from latesearch.search.timing import SearchTimings

DEFAULT_MAX_TOKENS = 1 << 18  # padded document tokens per gathered mini-batch


def score_documents(
    store: IndexStore,
    Q: torch.Tensor,
    q_mask: torch.Tensor,
    doc_indices: np.ndarray,
    *,
    similarity: str,
    dtype: torch.dtype,
    timings: SearchTimings,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    source: str = "auto",
) -> torch.Tensor:
    """MaxSim scores (nq, n) float32 on CPU of queries Q (nq, Lq, dim) on the scoring device
    against the documents `doc_indices` (n,), in the order given.

    Candidates are gathered longest first in mini-batches of at most `max_tokens` padded
    tokens, so the padding per batch is small and memory stays bounded. `source` is where
    the vectors come from (`IndexStore.flat`: "auto", "full" or "residual").
    """
    device = Q.device
    idx = np.asarray(doc_indices, dtype=np.int64).reshape(-1)
    scores = torch.empty((Q.shape[0], idx.size), dtype=torch.float32)
    if idx.size == 0:
        return scores
    lens = store.doclens[idx]
    order = np.argsort(-lens, kind="stable")
    start = 0
    while start < idx.size:
        width = max(int(lens[order[start]]), 1)
        rows = order[start : start + max(1, max_tokens // width)]
        with timings.stage("gather", device):
            D, mask = store.gather(idx[rows], device=device, dtype=dtype, source=source)
        with timings.stage("score", device):
            part = maxsim(Q, D, mask, q_mask, similarity)
            scores[:, torch.from_numpy(rows)] = part.float().cpu()
        start += rows.size
    timings.n_candidates += idx.size * Q.shape[0]
    return scores

