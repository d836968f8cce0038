"""Mode "fused": end-to-end MaxSim and the dense view fused over the union of their top
max(k, 100), every document with both scores (MaxSim computed for the dense side's
documents the engine did not return), by `search.fusion.fuse_union` ("zscore" by
default, "rrf" or "score")."""

from __future__ import annotations

import numpy as np

from latesearch.search import dense_view
from latesearch.search.engine.residual_scoring import exact_scores
from latesearch.search.fusion import fuse_union
from latesearch.search.modes.base import Batch, Ranked, SearchMode
from latesearch.search.modes.dense import Dense
from latesearch.search.modes.e2e import EndToEnd


class Fused(SearchMode):
    name = "fused"
    maxsim_scores = False
    summary = "end-to-end MaxSim and the dense view fused"
    queries = "both"
    sharded = "fuse_sides"
    parts = (Dense(), EndToEnd())

    def run(self, searcher, batch: Batch, request) -> list[Ranked]:
        late = searcher.end_to_end(batch, request.depth, request)
        return [self._fuse(searcher, batch, i, late[i], row, request)
                for i, row in enumerate(batch.dense)]  # fmt: skip

    def _fuse(self, searcher, batch: Batch, i: int, late: Ranked, dense: np.ndarray,
              request) -> Ranked:  # fmt: skip
        """One query's fused ranking over the union of both sides' top documents."""
        store, timings = searcher.store, batch.timings
        late_scores, late_docs = late
        dense_docs = dense_view.ranked(dense, request.depth, batch.allowed)[1]
        missing = np.setdiff1d(dense_docs, late_docs)
        extra = exact_scores(store, batch.Q[i : i + 1], batch.mask[i : i + 1], missing,
                             timings=timings, source=request.source,
                             similarity=store.colbert_config.similarity)  # fmt: skip
        with timings.stage("score"):
            docs = np.concatenate([late_docs, missing]).astype(np.int64)
            colbert = np.concatenate([late_scores, extra])
            return fuse_union(docs, colbert, dense[docs], request.k,
                              fusion=request.fusion_method, weight=request.fusion.weight)
