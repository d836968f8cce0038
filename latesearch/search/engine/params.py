"""`EngineParams`: how wide the engine searches. Defaults follow k, from PLAID's paper
(k = 10: 1 cell, t_cs 0.5, 256 documents; k = 100: 2, 0.45, 1024; k = 1000: 4, 0.4, 4096)
except 3 cells at k = 100: with 2, the engine missed relevant documents that exhaustive
search ranks in its top 100 on SciFact-novel. For models whose queries are padded with
[MASK] (query augmentation) `ndocs` is 768 at k = 10 and 2048 at k = 100: their [MASK]
tokens match many documents alike, the centroid interaction ranks those documents less
like the exact scores do, and with PLAID's 256 a ColBERT-format checkpoint kept 0.93 /
0.84 of the exhaustive top 10 on SciFact / Vaswani against 0.96 / 0.95 with 768
(docs/index-format.md).

`EngineParams.auto` adapts `ncells` to the index and the query (`IndexStats`, the query's
token count): see its docstring."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from latesearch._configio import check_positive
from latesearch.errors import InputError

# (largest k, ncells, centroid_score_threshold, ndocs)
DEFAULTS = ((10, 1, 0.5, 256), (100, 3, 0.45, 1024), (None, 4, 0.4, 4096))
AUGMENTED_NDOCS = ((10, 768), (100, 2048))  # (largest k, ndocs) where queries carry [MASK] tokens
CANDIDATE_BUDGET = 8  # `auto`: candidates aimed at, in multiples of ndocs
MAX_CELLS = 4  # `auto`: at most this many times the k table's ncells


@dataclass(frozen=True)
class IndexStats:
    """What `EngineParams.auto` reads of an index: documents, tokens, centroids, the
    inverted file's (document, centroid) pairs, whether it keeps the fp16 tier and whether
    its model pads queries with [MASK]."""

    n_docs: int
    n_tokens: int
    n_centroids: int
    n_pairs: int
    has_full: bool = False
    query_augmentation: bool = False

    @property
    def docs_per_cell(self) -> float:
        """The mean length of an inverted list: the documents one probed cell adds."""
        return self.n_pairs / max(1, self.n_centroids)


@dataclass(frozen=True)
class EngineParams:
    """`ncells`: centroids per query token whose documents are candidates;
    `centroid_score_threshold` (t_cs): centroids whose best score against every query token
    is lower are pruned from the first centroid interaction; `ndocs`: documents kept by
    that interaction (a quarter of them, at least k, are scored exactly);
    `lookup_tables`: score residual-only tokens from lookup tables (`lut_scoring`) rather
    than by decompressing them (`residual_scoring`), where the search allows it."""

    ncells: int
    centroid_score_threshold: float
    ndocs: int
    lookup_tables: bool = True

    def __post_init__(self) -> None:
        check_positive("ncells", self.ncells)
        check_positive("ndocs", self.ndocs)
        check_threshold(self.centroid_score_threshold)
        if not isinstance(self.lookup_tables, bool):
            raise InputError(
                f"lookup_tables must be True or False, got {self.lookup_tables!r}",
                field="lookup_tables",
            )

    @classmethod
    def for_k(
        cls,
        k: int,
        *,
        ncells: int | None = None,
        centroid_score_threshold: float | None = None,
        ndocs: int | None = None,
        query_augmentation: bool = False,
    ) -> EngineParams:
        """The defaults for `k` and the model's query augmentation (the index's
        `ColBERTConfig.query_augmentation`), with any of the three knobs overridden."""
        _, cells, t_cs, docs = next(d for d in DEFAULTS if d[0] is None or k <= d[0])
        if query_augmentation:
            docs = next((n for top, n in AUGMENTED_NDOCS if k <= top), docs)
        docs = max(docs, 4 * k)
        return cls(
            ncells=cells if ncells is None else ncells,
            centroid_score_threshold=t_cs
            if centroid_score_threshold is None
            else centroid_score_threshold,
            ndocs=docs if ndocs is None else ndocs,
        )

    @classmethod
    def auto(
        cls,
        k: int,
        stats: IndexStats,
        query_tokens: int,
        *,
        ncells: int | None = None,
        centroid_score_threshold: float | None = None,
        ndocs: int | None = None,
    ) -> EngineParams:
        """The parameters for this index and query: `for_k`'s table (t_cs and ndocs from
        k and the model's query augmentation), with `ncells` raised where the index's cells
        are sparse or the query is short, so that the candidates approach
        CANDIDATE_BUDGET x ndocs:

            ncells = clamp(floor(8 ndocs / (query_tokens x docs_per_cell)),
                           table ncells, 4 x table ncells, n_centroids)

        Why: the candidates are where the default model loses most of the exhaustive top 10
        (0.978 kept at ncells 1 on SciFact, 0.990 at 2), and each extra cell costs its
        documents, query_tokens x docs_per_cell of them, in stages 1-3. In a small index
        (few documents per cell: ~35 on 2,000 SciFact documents) or for a short query a
        second or third cell costs little; in a large one (~250 per cell at 100,000
        passages, ~600 at a million) one cell per token already yields several times the
        budget, and the table's ncells stays. The fp16 tier does not enter: it changes how
        the survivors are scored, not which documents a wider search finds. Any knob given
        wins over the rule (docs/index-format.md)."""
        base = cls.for_k(k, query_augmentation=stats.query_augmentation)
        if ncells is None:
            per_cell = max(1, query_tokens) * max(stats.docs_per_cell, 1.0)
            wanted = int(CANDIDATE_BUDGET * base.ndocs // per_cell)
            most = max(1, min(MAX_CELLS * base.ncells, stats.n_centroids))
            ncells = min(max(wanted, base.ncells), most)
        return cls(
            ncells=ncells,
            centroid_score_threshold=base.centroid_score_threshold
            if centroid_score_threshold is None
            else centroid_score_threshold,
            ndocs=base.ndocs if ndocs is None else ndocs,
        )

    def exact_survivors(self, k: int) -> int:
        """How many documents the last stage scores exactly: ndocs / 4, at least k."""
        return max(k, self.ndocs // 4)


def check_threshold(t_cs: Any) -> None:
    """InputError unless the centroid score threshold is a number (not NaN)."""
    if isinstance(t_cs, bool) or not isinstance(t_cs, int | float) or math.isnan(t_cs):
        raise InputError(f"centroid_score_threshold must be a number, got {t_cs!r}",
                         field="centroid_score_threshold")  # fmt: skip


@dataclass(frozen=True)
class ParamOverrides:
    """The knobs a search fixes (None: left to `EngineParams.auto`, per query)."""

    ncells: int | None = None
    centroid_score_threshold: float | None = None
    ndocs: int | None = None

    def resolve(self, k: int, stats: IndexStats, query_tokens: int) -> EngineParams:
        return EngineParams.auto(k, stats, query_tokens, ncells=self.ncells,
                                 centroid_score_threshold=self.centroid_score_threshold,
                                 ndocs=self.ndocs)  # fmt: skip
