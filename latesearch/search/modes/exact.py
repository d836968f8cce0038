"""Mode "exact": every document (every one the filter allows) scored by exact MaxSim."""

from __future__ import annotations

from latesearch.search.modes.base import Batch, Ranked, SearchMode


class Exact(SearchMode):
    name = "exact"
    summary = "every document scored by exact MaxSim"

    def run(self, searcher, batch: Batch, request) -> list[Ranked]:
        if batch.allowed is not None:
            allowed = [batch.allowed] * len(batch.texts)
            return searcher.score_candidates(batch, allowed, request.k, request.source)
        return searcher.exhaustive(batch, request.k, request.source)
