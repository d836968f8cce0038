"""Hybrid search: a BM25 ranking and a ColBERT ranking of the same query fused into one.

- "rrf" (reciprocal rank fusion, Cormack et al. 2009): a document scores
  `w / (rrf_k + rank_colbert) + (1 - w) / (rrf_k + rank_bm25)`, a missing rank adding 0;
  with the default w = 0.5 this ranks as plain RRF.
- "score" (normalized score fusion): each list's scores are min-max normalized to [0, 1]
  over its own top documents, then `w * colbert + (1 - w) * bm25`, a missing score 0.

`w` is `hybrid_weight`, the ColBERT side's weight.

The "fused" mode fuses MaxSim with an index's dense view (one pooled vector per document).
Both scores are known for every document there (the dense side is exact over all of them;
MaxSim is computed for the dense side's documents the engine did not return), so it fuses
over the union of the two top lists with every score present (`fuse_union`), by default
with "zscore": each side's scores standardized over the union (mean 0, deviation 1), then
`w * colbert + (1 - w) * dense`; "rrf" and "score" work there too."""

from __future__ import annotations

import numpy as np

from latesearch.errors import InputError

FUSIONS = ("rrf", "score", "zscore")
DEFAULT_FUSION = {"hybrid": "rrf", "fused": "zscore"}
RRF_K = 60
DEFAULT_DEPTH = 100  # documents taken from each side, at least k

Ranked = tuple[np.ndarray, np.ndarray]


def check_fusion(fusion: str | None, weight: float, mode: str = "hybrid") -> str:
    """The fusion a mode uses (None: the mode's default), or InputError."""
    fusion = DEFAULT_FUSION[mode] if fusion is None else fusion
    allowed = FUSIONS if mode == "fused" else ("rrf", "score")
    if fusion not in allowed:
        raise InputError(f"fusion must be one of {allowed} for mode={mode!r}, got {fusion!r}",
                         field="fusion")  # fmt: skip
    check_weight(weight)
    return fusion


def check_weight(weight: object) -> float:
    """`hybrid_weight` as a float, or InputError unless it is a number in [0, 1]."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise InputError(f"hybrid_weight must be a number in [0, 1], got {weight!r}",
                         field="hybrid_weight")  # fmt: skip
    return float(weight)


def fuse(colbert: Ranked, bm25: Ranked, k: int, *, fusion: str = "rrf",
         weight: float = 0.5) -> Ranked:  # fmt: skip
    """The top-`k` (fused scores, doc indices) of two rankings, each (scores, indices)
    best first; ties go to the lower document index."""
    parts = []
    for (scores, docs), w in ((colbert, weight), (bm25, 1.0 - weight)):
        docs = np.asarray(docs, dtype=np.int64)
        if fusion == "rrf":
            values = w / (RRF_K + np.arange(1, docs.size + 1, dtype=np.float64))
        else:
            values = w * _min_max(np.asarray(scores, dtype=np.float64))
        parts.append((docs, values))
    docs = np.concatenate([d for d, _ in parts])
    values = np.concatenate([v for _, v in parts])
    if docs.size == 0:
        return np.zeros(0, dtype=np.float32), docs
    unique, where = np.unique(docs, return_inverse=True)
    total = np.zeros(unique.size, dtype=np.float64)
    np.add.at(total, where, values)
    order = np.lexsort((unique, -total))[:k]
    return total[order].astype(np.float32), unique[order]


def fuse_union(docs: np.ndarray, colbert: np.ndarray, dense: np.ndarray, k: int, *,
               fusion: str = "zscore", weight: float = 0.5) -> Ranked:  # fmt: skip
    """The top-`k` (fused scores, doc indices) of documents `docs` (unique) given both of
    their scores; ties go to the lower document index."""
    docs = np.asarray(docs, dtype=np.int64)
    if docs.size == 0:
        return np.zeros(0, dtype=np.float32), docs
    sides = []
    for scores in (np.asarray(colbert, np.float64), np.asarray(dense, np.float64)):
        finite = np.isfinite(scores)
        if not finite.all():  # a document without tokens: as low as the lowest
            scores = np.where(finite, scores, scores[finite].min() if finite.any() else 0.0)
        if fusion == "rrf":
            ranks = np.empty(scores.size, dtype=np.float64)
            ranks[np.lexsort((docs, -scores))] = np.arange(1, scores.size + 1)
            sides.append(1.0 / (RRF_K + ranks))
        elif fusion == "score":
            sides.append(_min_max(scores))
        else:
            spread = scores.std()
            sides.append((scores - scores.mean()) / spread if spread > 0 else scores * 0.0)
    total = weight * sides[0] + (1.0 - weight) * sides[1]
    order = np.lexsort((docs, -total))[:k]
    return total[order].astype(np.float32), docs[order]


def _min_max(scores: np.ndarray) -> np.ndarray:
    if scores.size == 0:
        return scores
    low, high = scores.min(), scores.max()
    if high - low <= 0:
        return np.ones_like(scores)
    return (scores - low) / (high - low)
