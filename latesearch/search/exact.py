"""Exhaustive MaxSim over every document (the reference the other modes are measured
against): streams the memory-mapped index block by block, keeping a running top-k."""

from __future__ import annotations

import numpy as np
import torch

from latesearch.indexing import IndexStore
from latesearch.scoring import maxsim
from latesearch.search.rerank import DEFAULT_MAX_TOKENS
from latesearch.search.timing import SearchTimings


def exhaustive_top_k(
    store: IndexStore,
    Q: torch.Tensor,
    q_mask: torch.Tensor,
    k: int,
    *,
    similarity: str,
    dtype: torch.dtype,
    timings: SearchTimings,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    source: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, doc indices), each (nq, min(k, n_docs)), of the best documents per query,
    unsorted within a row (callers sort with `ranking.top_k`).

    Blocks hold consecutive documents, at most `max_tokens` padded tokens each; memory stays
    bounded whatever the collection size.
    """
    device, nq, n = Q.device, Q.shape[0], store.n_docs
    k = min(k, n)
    best = torch.full((nq, 0), float("-inf"), device=device)
    best_idx = torch.zeros((nq, 0), dtype=torch.long, device=device)
    per_block = max(1, max_tokens // max(int(store.doclens.max(initial=1)), 1))
    for start in range(0, n, per_block):
        stop = min(n, start + per_block)
        with timings.stage("gather", device):
            D, mask = store.gather(np.arange(start, stop), device=device, dtype=dtype,
                                   source=source)
        with timings.stage("score", device):
            block = maxsim(Q, D, mask, q_mask, similarity).float()
            ids = torch.arange(start, stop, device=device).expand(nq, -1)
            merged, merged_idx = torch.cat([best, block], 1), torch.cat([best_idx, ids], 1)
            best, pos = merged.topk(min(k, merged.shape[1]), dim=1)
            best_idx = merged_idx.gather(1, pos)
    timings.n_candidates += n * nq
    return best.cpu().numpy(), best_idx.cpu().numpy()
