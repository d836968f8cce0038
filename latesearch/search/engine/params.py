"""`EngineParams`: how wide the engine searches. Defaults follow k, from PLAID's paper
(k = 10: 1 cell, t_cs 0.5, 256 documents; k = 100: 2, 0.45, 1024; k = 1000: 4, 0.4, 4096)
except 3 cells at k = 100: with 2, the engine missed relevant documents that exhaustive
search ranks in its top 100 on SciFact-novel (docs/index-format.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from latesearch.errors import InputError

# (largest k, ncells, centroid_score_threshold, ndocs)
DEFAULTS = ((10, 1, 0.5, 256), (100, 3, 0.45, 1024), (None, 4, 0.4, 4096))


@dataclass(frozen=True)
class EngineParams:
    """`ncells`: centroids per query token whose documents are candidates;
    `centroid_score_threshold` (t_cs): centroids whose best score against every query token
    is lower are pruned from the first centroid interaction; `ndocs`: documents kept by
    that interaction (a quarter of them, at least k, are scored exactly)."""

    ncells: int
    centroid_score_threshold: float
    ndocs: int

    def __post_init__(self) -> None:
        _check_int("ncells", self.ncells)
        _check_int("ndocs", self.ndocs)
        t_cs = self.centroid_score_threshold
        if isinstance(t_cs, bool) or not isinstance(t_cs, int | float) or math.isnan(t_cs):
            raise InputError(
                f"centroid_score_threshold must be a number, got {t_cs!r}",
                field="centroid_score_threshold",
            )

    @classmethod
    def for_k(
        cls,
        k: int,
        *,
        ncells: int | None = None,
        centroid_score_threshold: float | None = None,
        ndocs: int | None = None,
    ) -> EngineParams:
        """The defaults for `k`, with any of the three overridden."""
        _, cells, t_cs, docs = next(d for d in DEFAULTS if d[0] is None or k <= d[0])
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


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}", field=name)
