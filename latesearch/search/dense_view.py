"""The search side of an index's dense view: one pooled vector per document
(`IndexConfig.dense`, stored by `indexing.dense_vectors`), its query side, exact top-k
over it, and its fusion with MaxSim (the "dense" and "fused" modes). The bi-encoder model
that a "backbone" view encodes with is `modeling.dense`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from latesearch.indexing import IndexStore
from latesearch.modeling import ColBERT
from latesearch.search.ranking import top_k

Ranked = tuple[np.ndarray, np.ndarray]


def query_vectors(store: IndexStore, model: ColBERT, encoder: Any,
                  texts: Sequence[str]) -> np.ndarray:  # fmt: skip
    """(n, dense_dim) unit query vectors on the side the index's dense view was built
    with: the ColBERT model's pooled states ("pooled") or the dense encoder ("backbone")."""
    if store.dense_source == "backbone":
        return encoder.encode(list(texts)).numpy()
    return model.encode_pooled_queries(list(texts)).numpy()


def ranked(scores: np.ndarray, k: int, allowed: np.ndarray | None) -> Ranked:
    """The top-`k` (scores, doc indices) of one query's scores over every document, only
    `allowed` ones (sorted doc indices) where given."""
    idx = np.arange(scores.size, dtype=np.int64) if allowed is None else allowed
    values = scores if allowed is None else scores[allowed]
    if values.size > 4 * k:  # a partial sort first: large collections
        keep = np.argpartition(-values, 4 * k)[: 4 * k]
        values, idx = values[keep], idx[keep]
    return top_k(values.astype(np.float32), idx, k)
