"""`DenseVectors`: the stored side of an index's dense view (`IndexConfig.dense`): one
pooled float16 vector per document, memory-mapped per chunk, scored exactly by cosine.
(`search.dense_view` holds its search modes; `modeling.dense` is the bi-encoder.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latesearch.compressed.arrays import load_npy
from latesearch.errors import ConfigError
from latesearch.indexing.manifest import Manifest
from latesearch.scoring.precision import as_float32


class DenseVectors:
    """Each chunk's (n_docs, dense_dim) pooled vectors, where the index has a dense view."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder, self.manifest = folder, manifest
        self._chunks: list[np.memmap] = []
        if manifest.dense_dim:
            for chunk in manifest.chunks:
                shape = (chunk.n_docs, manifest.dense_dim)
                self._chunks.append(load_npy(folder / chunk.dense, dtype="float16", shape=shape,
                                             mmap=True))  # fmt: skip

    def close(self) -> None:
        """Release the memory maps."""
        self._chunks = []

    @property
    def present(self) -> bool:
        """Whether the index holds a pooled dense vector per document (a dense view)."""
        return bool(self.manifest.dense_dim)

    @property
    def source(self) -> str | None:
        """Where the vectors come from ("pooled", "backbone"), None without them."""
        return self.manifest.config.dense.source if self.present else None

    def chunk(self, i: int) -> np.memmap | None:
        """Chunk `i`'s vectors (None without a dense view or once closed)."""
        return self._chunks[i] if i < len(self._chunks) else None

    def chunks(self) -> list[np.memmap]:
        """Each chunk's (n_docs, dense_dim) float16 pooled vectors (memory-mapped)."""
        if not self.present:
            raise ConfigError(
                f"{self.folder}: this index has no dense view (build it with "
                "dense='pooled' or 'backbone', CLI --dense)"
            )
        return self._chunks

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """(n_queries, n_docs) cosine of unit query vectors against every document's
        pooled vector: exact, a matrix product per chunk."""
        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        parts = [(q @ torch.from_numpy(as_float32(np.asarray(d))).T).numpy()
                 for d in self.chunks()]  # fmt: skip
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(q), 0), np.float32)
