"""Mode "e2e", end to end: on a compressed index the engine (`search.engine`: centroid
candidates, centroid interaction, exact scores of the survivors); on an uncompressed one
the paper's faiss candidates (Section 3.6, the ann/ component) re-ranked exactly."""

from __future__ import annotations

from latesearch.search.modes.base import Batch, Ranked, SearchMode, e2e_servable


class EndToEnd(SearchMode):
    name = "e2e"
    summary = "end to end: the engine (compressed) or faiss candidates (uncompressed)"

    def missing(self, store) -> str | None:
        return None if e2e_servable(store) else "the ann/ component (add_ann())"

    def prepare(self, searcher, request) -> None:
        _ = searcher.engine if searcher.store.compressed else searcher.ann

    def run(self, searcher, batch: Batch, request) -> list[Ranked]:
        return searcher.end_to_end(batch, request.k, request)
