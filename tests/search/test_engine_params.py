"""`EngineParams.auto`: the engine's parameters from the index's statistics and the query,
with the knobs a call gives winning over the rule."""

from __future__ import annotations

import pytest

from latesearch.errors import InputError
from latesearch.search.engine import EngineParams
from latesearch.search.engine.params import IndexStats, ParamOverrides


def stats(docs_per_cell: float, n_centroids: int = 8192, **kw) -> IndexStats:
    n_pairs = int(docs_per_cell * n_centroids)
    return IndexStats(n_docs=n_pairs // 80, n_tokens=n_pairs * 2, n_centroids=n_centroids,
                      n_pairs=n_pairs, **kw)  # fmt: skip


def test_sparse_cells_and_short_queries_probe_more_cells():
    small = stats(35)  # ~2,000 SciFact documents
    assert EngineParams.auto(10, small, 20) == EngineParams(2, 0.5, 256)  # 2048 / 700
    assert EngineParams.auto(10, small, 8).ncells == 4  # 2048 / 280 = 7, capped at 4 x 1
    assert EngineParams.auto(10, small, 64).ncells == 1
    assert EngineParams.auto(100, small, 20) == EngineParams(11, 0.45, 1024)  # 8192 / 700
    assert EngineParams.auto(100, small, 4).ncells == 12  # capped at 4 x 3


def test_dense_cells_keep_the_k_table():
    large = stats(600, n_centroids=131072)  # ~1M synthetic passages
    for k in (10, 100, 1000):
        assert EngineParams.auto(k, large, 20) == EngineParams.for_k(k)
    assert EngineParams.auto(10, large, 1).ncells == 3  # one query token: 2048 / 600


def test_query_augmentation_and_tiny_indexes():
    augmented = stats(600, n_centroids=131072, query_augmentation=True)
    assert EngineParams.auto(10, augmented, 32) == EngineParams.for_k(10, query_augmentation=True)
    tiny = stats(3, n_centroids=2)  # never more cells than the index has
    assert EngineParams.auto(10, tiny, 4).ncells == 2
    # the fp16 tier does not change the choice
    assert EngineParams.auto(10, stats(35, has_full=True), 20) == EngineParams.auto(
        10, stats(35), 20
    )


def test_overrides_win_over_the_rule():
    small = stats(35)
    got = EngineParams.auto(10, small, 8, ncells=1, centroid_score_threshold=0.3, ndocs=99)
    assert got == EngineParams(1, 0.3, 99)
    assert ParamOverrides(ndocs=500).resolve(10, small, 8) == EngineParams(4, 0.5, 500)
    assert ParamOverrides().resolve(10, small, 20) == EngineParams.auto(10, small, 20)
    with pytest.raises(InputError):
        ParamOverrides(ncells=0).resolve(10, small, 20)
