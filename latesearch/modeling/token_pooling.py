"""Document token pooling inside the encoder, as Sentence Transformers 6's
`HierarchicalTokenPooling` does it at encode time (documents only), so that a checkpoint
saved with that module encodes its documents to the same vectors.

Per document: the first `protected_tokens` vectors stay as they are; the others are
clustered by Ward linkage (scipy) on the condensed float32 matrix of cosine distances
`clamp(1 - x.y, 0, 2)` (dot products, so cosine only for unit vectors), the tree cut by
`fcluster` into at most `max(1, floor(m / pool_factor))` clusters (or
`max_tokens - protected_tokens`, or at `distance_threshold`); each cluster becomes the
plain mean of its members, in the order of fcluster's labels; with `normalize`, every
output vector (protected ones too) is L2-normalized. This differs from latesearch's
index-time pooling (`Index.build(pool_factor=N)`: Ward on the vectors themselves,
ceil(m / N) clusters, re-normalized means, lone tokens kept as they were).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from latesearch._configio import JsonConfig
from latesearch.errors import ConfigError


@dataclass(frozen=True)
class DocumentPooling(JsonConfig):
    """`HierarchicalTokenPooling`'s settings (`num_protected_tokens` is
    `protected_tokens`, `normalize_embeddings` is `normalize`)."""

    file_name: ClassVar[str | None] = None

    pool_factor: float = 1.0
    max_tokens: int | None = None
    distance_threshold: float | None = None
    protected_tokens: int = 1
    normalize: bool = True

    def validate(self) -> None:
        self._check_ints("protected_tokens", minimum=0)
        self._check_ints("max_tokens")
        if not math.isfinite(self.pool_factor) or self.pool_factor < 1:
            self._bad("pool_factor", "a finite number >= 1")
        threshold = self.distance_threshold
        if threshold is not None and (not math.isfinite(threshold) or threshold < 0):
            self._bad("distance_threshold", "a finite number >= 0")
        chosen = [self.pool_factor != 1, self.max_tokens is not None, threshold is not None]
        if sum(chosen) > 1:
            raise ConfigError("DocumentPooling: pool_factor, max_tokens and distance_threshold "
                              "are mutually exclusive", field="pool_factor")  # fmt: skip
        if self.max_tokens is not None and self.max_tokens <= self.protected_tokens:
            self._bad("max_tokens", f"more than protected_tokens ({self.protected_tokens})")

    @property
    def merges(self) -> bool:
        """Whether any tokens are merged (else only, with `normalize`, normalized)."""
        return (self.pool_factor > 1 or self.max_tokens is not None
                or self.distance_threshold is not None)  # fmt: skip


def pool_tokens(vectors: torch.Tensor, pooling: DocumentPooling) -> tuple[torch.Tensor, np.ndarray]:
    """One document's pooled vectors (n_out, dim) and, per input vector, the output vector
    that stands for it."""
    n = len(vectors)
    kept = min(pooling.protected_tokens, n)
    m = n - kept
    labels = np.arange(n)
    out = vectors
    if pooling.merges and m > 1:
        values = vectors[kept:]
        values = values.float() if values.dtype in (torch.float16, torch.bfloat16) else values
        clusters = _ward_labels(values, m, pooling)
        count = int(clusters.max()) + 1
        index = torch.from_numpy(clusters).to(values.device)
        sums = values.new_zeros((count, values.shape[1]))
        sums.scatter_add_(0, index[:, None].expand_as(values), values)
        sizes = values.new_zeros(count).scatter_add_(0, index, values.new_ones(m))
        means = sums / sizes.clamp_min(1)[:, None]
        out = torch.cat((vectors[:kept], means.to(vectors.dtype)))
        labels = np.concatenate([np.arange(kept), kept + clusters])
    if pooling.normalize:
        wide = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
        out = F.normalize(wide, dim=-1).to(out.dtype)
    return out, labels


def _ward_labels(values: torch.Tensor, m: int, pooling: DocumentPooling) -> np.ndarray:
    """Dense zero-based cluster labels of `values` (m, dim), in fcluster's order."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if pooling.distance_threshold is None:
        if pooling.max_tokens is not None:
            target = pooling.max_tokens - pooling.protected_tokens
        else:
            target = int(m // pooling.pool_factor)
        target = min(max(target, 1), m)
        if target >= m:
            return np.arange(m)
    points = values.detach().to("cpu", torch.float32)
    distances = (1 - points @ points.T).clamp_(0, 2).numpy()
    tree = linkage(squareform(distances, checks=False), method="ward")
    if pooling.distance_threshold is None:
        found = fcluster(tree, t=target, criterion="maxclust")
    else:
        found = fcluster(tree, t=pooling.distance_threshold, criterion="distance")
    return np.unique(found, return_inverse=True)[1].reshape(-1)
