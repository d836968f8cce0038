"""`SearchMode`: the small interface every search mode implements, and the `Batch` of
queries a mode runs on.

A mode says what an index needs to serve it (`missing`), loads that before any query is
timed (`prepare`), how its queries are encoded (`queries`: ColBERT token embeddings,
nothing, or both those and the dense view's scores from one pass), how a sharded index
merges its shards' answers (`sharded`), and runs a batch (`run`) with the stages the
`Searcher` offers (encoding, the engine, BM25, exact scoring, the dense view)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import torch

if TYPE_CHECKING:
    from latesearch.indexing import IndexStore
    from latesearch.search.request import SearchRequest
    from latesearch.search.searcher import Searcher
    from latesearch.search.timing import SearchTimings

Ranked = tuple[np.ndarray, np.ndarray]  # (scores, doc indices), best first


@dataclass
class Batch:
    """Queries of one batch and what has been computed for them: token embeddings `Q`
    and `mask` (modes whose `queries` is "tokens" or "both"), each query's dense scores
    over every document (`dense`, "both"), the filter's `allowed` doc indices (sorted, or
    None), and the timings to add to."""

    texts: list[str]
    Q: torch.Tensor | None
    mask: torch.Tensor | None
    dense: np.ndarray | None
    allowed: np.ndarray | None
    timings: SearchTimings


class SearchMode:
    """One search mode. Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    # "tokens": ColBERT query embeddings (given, or encoded by the searcher); "none": the
    # mode encodes what it needs itself; "both": token embeddings and dense-view scores
    queries: ClassVar[Literal["tokens", "none", "both"]] = "tokens"
    # how a sharded index merges: "top_k" (each shard's top k, exact scores, merged by
    # score), "bm25_then_exact" (the collection's BM25 candidates scored exactly),
    # "fuse_sides" (each fused side merged across shards, then fused)
    sharded: ClassVar[Literal["top_k", "bm25_then_exact", "fuse_sides"]] = "top_k"
    # whether BM25 scores it (a sharded index then passes the collection's statistics)
    bm25_scored: ClassVar[bool] = False
    # the modes it is made of: it needs, and loads, what each of them does
    parts: ClassVar[tuple[SearchMode, ...]] = ()
    # whether its scores are MaxSim sums (hits then carry a bounded score)
    maxsim_scores: ClassVar[bool] = True

    def missing(self, store: IndexStore) -> str | None:
        """What `store` lacks to serve this mode (None: it can); by default, what the
        first of its `parts` that cannot serve lacks."""
        return next((r for r in (p.missing(store) for p in self.parts) if r is not None), None)

    def prepare(self, searcher: Searcher, request: SearchRequest) -> None:
        """Load the components the mode reads (MissingComponentError where one is
        missing), before any query is encoded or timed; by default, its `parts`'."""
        for part in self.parts:
            part.prepare(searcher, request)

    def run(self, searcher: Searcher, batch: Batch, request: SearchRequest) -> list[Ranked]:
        """Each query's top `request.k` (scores, doc indices)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<mode {self.name}>"


def e2e_servable(store: IndexStore) -> bool:
    """Whether end-to-end search works: the engine of a compressed index, or faiss ANN."""
    from latesearch.indexing.components import ANN_DIR, present_components

    return store.compressed or ANN_DIR in present_components(store)
