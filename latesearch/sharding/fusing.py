"""The "hybrid" and "fused" modes over shards: each shard returns the two rankings that the
mode fuses (its "e2e" top and its BM25 or dense top), each side is merged across shards
by score, and the fusion (`latesearch.search.fusion`) runs here, on the merged sides.

- "fused": MaxSim and dense scores are exact per document, so the merged sides are the
  unsharded index's where "e2e" merges exactly (see `sharded_index`); the union's missing
  scores (MaxSim of dense-only documents, dense scores of MaxSim-only ones) are asked of
  the shards that own them, and the fused list equals the unsharded index's.
- "hybrid": the ColBERT side merges like "e2e"; the BM25 side is scored by every shard
  with the whole collection's statistics (passed in `options["bm25_statistics"]`), so
  it merges exactly too, and the result is the unsharded index's where "e2e" merges
  exactly (shards whose bm25/ cannot take them score with their own statistics).

Equal fused scores are ordered by document id (one index orders them by position)."""

from __future__ import annotations

from typing import Any

import numpy as np

from latesearch.search.fusion import fuse, fuse_union
from latesearch.search.request import SearchRequest
from latesearch.search.results import Hit, Hits
from latesearch.sharding.routing import by_shard


def fused_search(router: Any, n_shards: int, texts: list[str], request: SearchRequest,
                 encoded: Any) -> list[Hits]:  # fmt: skip
    """Each query's top `request.k` of a "hybrid" or "fused" search over the shards of
    `router`."""
    k, mode, depth = request.k, request.mode, request.depth
    fusion, weight = request.fusion_method, request.fusion.weight
    per_shard = router.call("sides", [(texts, request, encoded)] * n_shards)
    sides = [tuple(merge_side([s[q][side] for s in per_shard], depth) for side in (0, 1))
             for q in range(len(texts))]  # fmt: skip
    if mode == "hybrid":
        return [_fuse_ranks(late, other, k, fusion, weight) for late, other in sides]
    missing = [_missing_scores(late, other) for late, other in sides]
    asked = [by_shard(dict.fromkeys(a), n_shards) for a, _ in missing]
    asked_dense = [by_shard(dict.fromkeys(d), n_shards) for _, d in missing]
    source = request.source
    found = router.call("scores_of", [
        (texts, [a.get(s, []) for a in asked], [d.get(s, []) for d in asked_dense], encoded,
         source) for s in range(n_shards)
    ])  # fmt: skip
    out = []
    for q, (late, other) in enumerate(sides):
        maxsim = {h.doc_id: h.score for h in late}
        dense = {h.doc_id: h.score for h in other}
        for s in range(n_shards):
            scores_maxsim, scores_dense = found[s][q]
            maxsim.update(zip(asked[q].get(s, []), scores_maxsim, strict=True))
            dense.update(zip(asked_dense[q].get(s, []), scores_dense, strict=True))
        ids = sorted(maxsim)
        scores, order = fuse_union(np.arange(len(ids)), np.array([maxsim[i] for i in ids]),
                                   np.array([dense[i] for i in ids]), k, fusion=fusion,
                                   weight=weight)  # fmt: skip
        out.append(_hits([ids[i] for i in order], scores, {**_by_id(other), **_by_id(late)}))
    return out


def merge_side(parts: list[Hits], depth: int) -> Hits:
    """The top `depth` of the shards' hits of one side, by score (ties: in each shard's
    order, the earlier shard first)."""
    pooled = sorted((h for part in parts for h in part), key=lambda h: -h.score)
    return Hits(pooled[:depth])


def _missing_scores(late: Hits, other: Hits) -> tuple[list[str], list[str]]:
    """(ids whose MaxSim is missing: the dense side's only, ids whose dense score is
    missing: MaxSim's only)."""
    late_ids, other_ids = {h.doc_id for h in late}, {h.doc_id for h in other}
    return ([h.doc_id for h in other if h.doc_id not in late_ids],
            [h.doc_id for h in late if h.doc_id not in other_ids])  # fmt: skip


def _fuse_ranks(late: Hits, other: Hits, k: int, fusion: str, weight: float) -> Hits:
    """`fuse` of the two merged rankings, documents numbered in id order."""
    ids = sorted({h.doc_id for h in late} | {h.doc_id for h in other})
    number = {doc_id: i for i, doc_id in enumerate(ids)}

    def ranked(hits: Hits) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([h.score for h in hits], dtype=np.float64),
                np.array([number[h.doc_id] for h in hits], dtype=np.int64))  # fmt: skip

    scores, order = fuse(ranked(late), ranked(other), k, fusion=fusion, weight=weight)
    return _hits([ids[i] for i in order], scores, {**_by_id(other), **_by_id(late)})


def _by_id(hits: Hits) -> dict[str, Hit]:
    return {h.doc_id: h for h in hits}


def _hits(ids: list[str], scores: np.ndarray, source: dict[str, Hit]) -> Hits:
    """Hits of `ids` with fused `scores`; text and metadata from the shards' hits."""
    return Hits([Hit(doc_id, float(score), rank + 1, source[doc_id].title,
                     source[doc_id].text, source[doc_id].metadata)
                 for rank, (doc_id, score) in enumerate(zip(ids, scores.tolist(),
                                                            strict=True))])  # fmt: skip
