"""latesearch: ColBERT (Khattab & Zaharia, SIGIR 2020) late-interaction retrieval.

Heavy submodules are imported on first use, so ``import latesearch`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncClient": "latesearch.client",
    "Client": "latesearch.client",
    "ColBERT": "latesearch.modeling",
    "ColBERTConfig": "latesearch.modeling",
    "Index": "latesearch.index",
    "SearchRequest": "latesearch.search.request",
    "ShardedIndex": "latesearch.sharding",
    "train": "latesearch.training",
    "TrainConfig": "latesearch.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'latesearch' has no attribute {name!r}")
