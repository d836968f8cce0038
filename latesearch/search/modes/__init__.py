"""Search modes, one module each behind one interface (`base.SearchMode`), and their
registry: the only list of modes. The CLI's choices, the HTTP API's enum, `/health`'s
servable modes and the sharded router all read it.

    e2e      end to end: the engine (compressed) or faiss candidates (uncompressed)
    rerank   BM25 candidates re-ranked exactly
    exact    every document scored exactly
    hybrid   BM25 and end to end, fused
    dense    the dense view alone
    fused    end to end and the dense view, fused

A new mode is one module with a `SearchMode` subclass and one line in `REGISTRY`."""

from __future__ import annotations

from latesearch.errors import InputError
from latesearch.search.modes.base import Batch, SearchMode
from latesearch.search.modes.dense import Dense
from latesearch.search.modes.e2e import EndToEnd
from latesearch.search.modes.exact import Exact
from latesearch.search.modes.fused import Fused
from latesearch.search.modes.hybrid import Hybrid
from latesearch.search.modes.rerank import Rerank

REGISTRY: dict[str, SearchMode] = {
    mode.name: mode for mode in (EndToEnd(), Rerank(), Exact(), Hybrid(), Dense(), Fused())
}

__all__ = ["REGISTRY", "Batch", "SearchMode", "get_mode", "mode_names", "servable_modes"]


def mode_names() -> tuple[str, ...]:
    """Every mode's name, in the registry's order."""
    return tuple(REGISTRY)


def get_mode(name: str) -> SearchMode:
    """The mode called `name`, or InputError listing the modes."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(f"mode must be one of {list(REGISTRY)}, got {name!r}",
                         field="mode") from None  # fmt: skip


def servable_modes(store) -> list[str]:
    """The modes `store` can answer (every one whose components it holds)."""
    return [name for name, mode in REGISTRY.items() if mode.missing(store) is None]
