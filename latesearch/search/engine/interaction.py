"""Stage 3 and 4: centroid interaction. A document's approximate score is MaxSim with each
of its tokens replaced by its centroid: sum over query tokens of the best centroid score
among the document's centroids. No vector is read, only centroid ids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from latesearch.compressed.ivf import InvertedFile
from latesearch.scoring.maxsim import segment_maxsim
from latesearch.search.engine.centroid_scores import CentroidScores


def pruned_interaction(
    scores: CentroidScores | np.ndarray,
    threshold: float,
    ivf: InvertedFile,
    candidates: np.ndarray,
    codes_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    candidate_tokens: int | None = None,
) -> np.ndarray:
    """(n_candidates,) approximate scores counting only centroids whose best score against
    any query token reaches `threshold` (PLAID's centroid pruning; a query token none of a
    document's kept centroids serves adds 0).

    Two ways to the same scores: from the inverted file (the kept centroids' lists, filtered
    to the candidates), or from the candidates' own codes (`codes_of`, given with
    `candidate_tokens`, their total length). The cheaper one is taken: the lists' work grows
    with the collection (more documents per centroid), the codes' with the candidates.
    `scores`: (n_centroids, Lq), or a `CentroidScores` (centroids it did not probe are
    pruned)."""
    if isinstance(scores, np.ndarray):
        scores = CentroidScores.of_matrix(scores)
    keep = scores.best() >= threshold
    kept = np.flatnonzero(keep)
    out = np.zeros((candidates.size, scores.matrix.shape[1]), dtype=np.float32)
    if kept.size == 0 or candidates.size == 0:
        return out.sum(axis=1)
    list_work = int((ivf.offsets[kept + 1] - ivf.offsets[kept]).sum())
    if codes_of is not None and candidate_tokens is not None and candidate_tokens < list_work:
        codes, lengths = codes_of(candidates)
        at = np.flatnonzero(keep[codes])  # the tokens of kept centroids, in order
        pos = np.searchsorted(np.cumsum(lengths), at, side="right")  # their documents
        rows = codes[at]
    else:
        docs, owner = ivf.pairs(kept)
        pos = np.searchsorted(candidates, docs)
        hit = pos < candidates.size
        hit[hit] = candidates[pos[hit]] == docs[hit]
        pos, rows = pos[hit], kept[owner[hit]]
        order = np.argsort(pos, kind="stable")
        pos, rows = pos[order], rows[order]
    if pos.size == 0:
        return out.sum(axis=1)
    values = torch.from_numpy(np.take(scores.matrix, rows, axis=0))  # (n_pairs, Lq)
    index = torch.from_numpy(pos)[:, None].expand(values.shape)
    # a document's best per query token; untouched documents stay 0. torch's scatter is
    # several times faster here than np.maximum.reduceat over many short segments, and
    # 5x faster than torch.segment_reduce (2 threads, idle; on a busy machine torch's
    # threads need OMP_WAIT_POLICY=PASSIVE, docs/serving.md)
    best = torch.from_numpy(out).scatter_reduce_(0, index, values, "amax", include_self=False)
    return best.sum(dim=1).numpy()


def full_interaction(scores: CentroidScores | np.ndarray, codes: np.ndarray,
                     lengths: np.ndarray) -> np.ndarray:  # fmt: skip
    """(n_docs,) approximate scores from every token's centroid: `codes` are the documents'
    token codes back to back, `lengths` their counts (an empty document scores -inf)."""
    matrix = scores.ensure(codes) if isinstance(scores, CentroidScores) else scores
    rows = torch.from_numpy(matrix).index_select(0, torch.from_numpy(codes))  # (n_tokens, Lq)
    return segment_maxsim(rows, lengths)


def best(values: np.ndarray, docs: np.ndarray, n: int) -> np.ndarray:
    """The `n` documents of highest value (ties to the lower document index), sorted by
    document index."""
    if docs.size <= n:
        return docs
    order = np.lexsort((docs, -values))[:n]
    return np.sort(docs[order])
