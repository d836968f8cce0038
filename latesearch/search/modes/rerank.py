"""Mode "rerank": BM25's top `bm25_k` (paper Section 3.5, the bm25/ component) re-ranked
by exact MaxSim."""

from __future__ import annotations

from latesearch.search.modes.base import Batch, Ranked, SearchMode


class Rerank(SearchMode):
    name = "rerank"
    summary = "BM25's top bm25_k re-ranked by exact MaxSim"
    bm25_scored = True
    sharded = "bm25_then_exact"

    def missing(self, store) -> str | None:
        from latesearch.indexing.components import BM25_DIR, present_components

        return None if BM25_DIR in present_components(store) else "the bm25/ component (add_bm25())"

    def prepare(self, searcher, request) -> None:
        _ = searcher.bm25

    def run(self, searcher, batch: Batch, request) -> list[Ranked]:
        lexical = searcher.lexical(batch, request.bm25.depth, request)
        return searcher.score_candidates(batch, [idx for _, idx in lexical], request.k,
                                         request.source)  # fmt: skip
