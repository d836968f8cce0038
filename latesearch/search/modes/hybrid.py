"""Mode "hybrid": the composition of two rankers, BM25 and end-to-end ColBERT, each taken
to the fusion depth (max(k, 100)) and fused (`search.fusion.fuse`: "rrf" by default, or
"score"), the ColBERT side weighted `hybrid_weight`, as Pyserini's HybridSearcher composes
a sparse and a dense searcher."""

from __future__ import annotations

from latesearch.search.fusion import fuse
from latesearch.search.modes.base import Batch, Ranked, SearchMode
from latesearch.search.modes.e2e import EndToEnd
from latesearch.search.modes.rerank import Rerank


class Hybrid(SearchMode):
    name = "hybrid"
    maxsim_scores = False
    summary = "BM25 and end-to-end rankings fused"
    bm25_scored = True
    sharded = "fuse_sides"
    parts = (EndToEnd(), Rerank())

    def sides(self, searcher, batch: Batch, request) -> tuple[list[Ranked], list[Ranked]]:
        """The two rankings fused: end to end and BM25, each query's top `request.depth`."""
        late = searcher.end_to_end(batch, request.depth, request)
        return late, searcher.lexical(batch, request.depth, request)

    def run(self, searcher, batch: Batch, request) -> list[Ranked]:
        late, lexical = self.sides(searcher, batch, request)
        with batch.timings.stage("score"):
            return [fuse(d, b, request.k, fusion=request.fusion_method,
                         weight=request.fusion.weight)
                    for d, b in zip(late, lexical, strict=True)]  # fmt: skip
