"""Mode "dense": the index's dense view alone (one pooled vector per document, built with
`dense=`), exact top k by cosine; the queries' pooled vectors are encoded here."""

from __future__ import annotations

from latesearch.search import dense_view
from latesearch.search.modes.base import Batch, Ranked, SearchMode


class Dense(SearchMode):
    name = "dense"
    maxsim_scores = False
    summary = "the dense view's pooled vectors alone (exact)"
    queries = "none"

    def missing(self, store) -> str | None:
        return None if store.has_dense else "a dense view (build the index with dense=...)"

    def prepare(self, searcher, request) -> None:
        from latesearch.indexing.components import MissingComponentError

        reason = self.missing(searcher.store)
        if reason is not None:
            raise MissingComponentError(f'mode "{self.name}" needs {reason}; '
                                        f"{searcher.store.folder} has none")  # fmt: skip
        if searcher.store.dense_source == "backbone":
            _ = searcher.dense_encoder

    def run(self, searcher, batch: Batch, request) -> list[Ranked]:
        scores = searcher.dense_scores(batch.texts, batch.timings)
        with batch.timings.stage("score"):
            return [dense_view.ranked(row, request.k, batch.allowed) for row in scores]
