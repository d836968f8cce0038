"""`Engine`: the stages of `latesearch.search.engine` over one compressed index, query by
query."""

from __future__ import annotations

import numpy as np
import torch

from latesearch.indexing import IndexStore
from latesearch.search.engine.candidates import candidate_documents
from latesearch.search.engine.centroid_scores import COARSE_FROM, CentroidScores, CoarseLevel
from latesearch.search.engine.interaction import best, full_interaction, pruned_interaction
from latesearch.search.engine.lut_scoring import applies, lut_scores
from latesearch.search.engine.params import EngineParams, IndexStats, ParamOverrides
from latesearch.search.engine.residual_scoring import exact_scores
from latesearch.search.first_stage import restrict
from latesearch.search.ranking import top_k
from latesearch.search.timing import SearchTimings

Ranked = tuple[np.ndarray, np.ndarray]
# a filter allowing at most this many times `ndocs` documents makes them all candidates
# (ranked by centroid interaction like any candidates); a wider one is intersected with
# the candidates of the query's cells
FILTER_ALL = 4


class Engine:
    """Searches a compressed `IndexStore` (read-only; the inverted file is memory-mapped)."""

    def __init__(self, store: IndexStore) -> None:
        if store.codec is None:
            raise ValueError(f"{store.folder}: the engine searches compressed indexes only")
        self.store = store
        self.centroids = store.codec.centroids32
        self.ivf = store.ivf
        # each document's distinct centroids: the interactions read them instead of the
        # token codes (a document often holds one centroid for several of its tokens)
        self.doc_centroids = self.ivf.by_document(store.n_docs)
        # very large indexes: stage 1 scores groups of centroids first (`centroid_scores`)
        n_centroids = store.codec.n_centroids
        self.coarse = CoarseLevel.build(self.centroids) if n_centroids >= COARSE_FROM else None
        self.stats = IndexStats(
            n_docs=store.n_docs, n_tokens=store.n_embeddings,
            n_centroids=store.codec.n_centroids, n_pairs=len(self.ivf),
            has_full=store.vectors.has_full,
            query_augmentation=store.colbert_config.query_augmentation,
        )  # fmt: skip

    def params(self, params: EngineParams | ParamOverrides, k: int,
               q_mask: torch.Tensor) -> EngineParams:  # fmt: skip
        """`params` as given, or the overrides completed by `EngineParams.auto` for this
        index and the query of q_mask (1, Lq)."""
        if isinstance(params, EngineParams):
            return params
        return params.resolve(k, self.stats, int(q_mask[0].sum()))

    def search(
        self,
        Q: torch.Tensor,
        q_mask: torch.Tensor,
        k: int,
        params: EngineParams | ParamOverrides,
        timings: SearchTimings,
        *,
        source: str = "auto",
        allowed: np.ndarray | None = None,
    ) -> list[Ranked]:
        """Top-`k` (scores, doc indices) of each query of Q (nq, Lq, dim) with q_mask,
        among the sorted doc indices `allowed` only, where given (a filter's). `params`:
        fixed, or overrides completed per query (`EngineParams.auto`)."""
        return [
            self._one(Q[i : i + 1], q_mask[i : i + 1], k, params, timings, source, allowed)
            for i in range(Q.shape[0])
        ]

    def _one(self, Q, q_mask, k: int, params: EngineParams | ParamOverrides, timings,
             source: str, allowed: np.ndarray | None) -> Ranked:  # fmt: skip
        """One query, Q (1, Lq, dim) and q_mask (1, Lq): stage 5 from lookup tables where
        `params.lookup_tables` and `lut_scoring.applies`, else from decompressed vectors."""
        params = self.params(params, k, q_mask)
        docs, scores = self._shortlist(Q, q_mask, k, params, timings, allowed, {})
        similarity = self.store.colbert_config.similarity
        if params.lookup_tables and applies(self.store, Q, similarity, source):
            exact = lut_scores(self.store, Q, q_mask, docs, scores, timings=timings)
        else:
            exact = exact_scores(self.store, Q, q_mask, docs, similarity=similarity,
                                 timings=timings, source=source)  # fmt: skip
        with timings.stage("score"):
            return top_k(exact, docs, k)

    def shortlist(
        self,
        Q: torch.Tensor,
        q_mask: torch.Tensor,
        k: int,
        params: EngineParams | ParamOverrides,
        timings: SearchTimings,
        *,
        allowed: np.ndarray | None = None,
        trace: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Stages 1-3 for one query, Q (1, Lq, dim): the doc indices to score exactly.
        `trace`, where given, receives the documents each stage keeps ("candidates",
        "pruned interaction", "full interaction")."""
        trace = {} if trace is None else trace
        params = self.params(params, k, q_mask)
        return self._shortlist(Q, q_mask, k, params, timings, allowed, trace)[0]

    def _shortlist(self, Q, q_mask, k: int, params: EngineParams, timings,
                   allowed: np.ndarray | None, trace: dict) -> Ranked:  # fmt: skip
        """`shortlist`'s documents and the query-centroid scores (`CentroidScores`)."""
        with timings.stage("candidates"):
            real = Q[0][q_mask[0]].detach().to("cpu", torch.float32).numpy()
            scores = CentroidScores(self.centroids, real, self.coarse)
            if allowed is not None and allowed.size <= FILTER_ALL * params.ndocs:
                docs = allowed  # a selective filter: every allowed document is a candidate
            else:
                docs = candidate_documents(self.ivf, scores.top_cells(params.ncells))
                if allowed is not None:
                    docs = restrict(docs, allowed, params.exact_survivors(k))
            trace["candidates"] = docs
        with timings.stage("interaction"):
            fetched: list = []  # the candidates' codes, where the pruned stage read them

            def codes_of(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                fetched[:] = [d, *self.doc_centroids.of(d)]
                return fetched[1], fetched[2]

            offsets = self.doc_centroids.offsets
            if docs.size > params.ndocs:
                approx = pruned_interaction(
                    scores, params.centroid_score_threshold, self.ivf, docs, codes_of=codes_of,
                    candidate_tokens=int((offsets[docs + 1] - offsets[docs]).sum()),
                )  # fmt: skip
                docs = best(approx, docs, params.ndocs)
            trace["pruned interaction"] = docs
            survivors = params.exact_survivors(k)
            if docs.size > survivors:
                codes, lengths = (subset_codes(*fetched, docs) if fetched
                                  else self.doc_centroids.of(docs))  # fmt: skip
                docs = best(full_interaction(scores, codes, lengths), docs, survivors)
            trace["full interaction"] = docs
        return docs, scores


def subset_codes(docs: np.ndarray, codes: np.ndarray, lengths: np.ndarray,
                 subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The codes and lengths of `subset` (sorted, within the sorted `docs`) out of the codes
    of `docs` laid back to back, without reading the index again."""
    pos = np.searchsorted(docs, subset)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[pos]
    lens = lengths[pos]
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    return codes[np.arange(int(lens.sum())) + shift], lens
