"""`EngineParams`: how wide the engine searches. Defaults follow k, from PLAID's paper
(k = 10: 1 cell, t_cs 0.5, 256 documents; k = 100: 2, 0.45, 1024; k = 1000: 4, 0.4, 4096)
except 3 cells at k = 100: with 2, the engine missed relevant documents that exhaustive
search ranks in its top 100 on SciFact-novel. For models whose queries are padded with
[MASK] (query augmentation) `ndocs` is 768 at k = 10 and 2048 at k = 100: their [MASK]
tokens match many documents alike, the centroid interaction ranks those documents less
like the exact scores do, and with PLAID's 256 a ColBERT-format checkpoint kept 0.93 /
0.84 of the exhaustive top 10 on SciFact / Vaswani against 0.96 / 0.95 with 768
(docs/index-format.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from latesearch._configio import check_positive
from latesearch.errors import InputError

# (largest k, ncells, centroid_score_threshold, ndocs)
DEFAULTS = ((10, 1, 0.5, 256), (100, 3, 0.45, 1024), (None, 4, 0.4, 4096))
AUGMENTED_NDOCS = ((10, 768), (100, 2048))  # (largest k, ndocs) where queries carry [MASK] tokens


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

    def exact_survivors(self, k: int) -> int:
        """How many documents the last stage scores exactly: ndocs / 4, at least k."""
        return max(k, self.ndocs // 4)


def check_threshold(t_cs: Any) -> None:
    """InputError unless the centroid score threshold is a number (not NaN)."""
    if isinstance(t_cs, bool) or not isinstance(t_cs, int | float) or math.isnan(t_cs):
        raise InputError(f"centroid_score_threshold must be a number, got {t_cs!r}",
                         field="centroid_score_threshold")  # fmt: skip
