"""Per-stage search timings (the paper's Section 4.2 breakdown)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

STAGES = ("encode", "candidates", "interaction", "gather", "score")


@dataclass
class SearchTimings:
    """Seconds spent per stage in one search call (summed over its queries).

    encode: query encoding; candidates: BM25, ANN or centroid candidate generation (and id
    lookup); interaction: the engine's centroid interaction (compressed indexes); gather:
    reading candidate embeddings from the memory-mapped store (decompressing residuals) and
    moving them to the scoring device; score: MaxSim and top-k; total: the whole call.
    """

    encode: float = 0.0
    candidates: float = 0.0
    interaction: float = 0.0
    gather: float = 0.0
    score: float = 0.0
    total: float = 0.0
    n_queries: int = 0
    n_candidates: int = 0  # documents scored, summed over queries
    mode: str = ""
    device: str = ""

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    @contextmanager
    def stage(self, name: str, device: torch.device | None = None) -> Iterator[None]:
        """Add the wall time of the block to stage `name` (CUDA work is synchronized)."""
        _sync(device)
        start = time.perf_counter()
        try:
            yield
        finally:
            _sync(device)
            setattr(self, name, getattr(self, name) + time.perf_counter() - start)


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
