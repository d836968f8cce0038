"""Token pooling at index time (Clavié et al. 2024, PyLate's `pool_factor`).

Each document keeps its first `PROTECTED_TOKENS` vectors ([CLS], as PyLate) as they are;
the others are clustered by Ward's method and each cluster is stored as the re-normalized
mean of its members. For unit vectors the squared Euclidean distance is twice the cosine
distance, so Ward on the vectors merges by cosine distance. `ceil(m / pool_factor)` clusters
remain of the m unprotected tokens: the first `m - ceil(m / pool_factor)` merges of the
linkage (scipy's, deterministic for a given input), not a distance threshold, so ties
never change the count. Pooled vectors are in the order of their first token.

A model whose config has `doc_pooling` (a Sentence Transformers 6 checkpoint saved with
`HierarchicalTokenPooling`) has its documents pooled here by that module's algorithm
instead (`modeling.token_pooling`), on the stored vectors widened to float32.

Which original tokens each pooled vector merged is kept per chunk (`spans`: for each
original token, its document's pooled vector; `textlens`: original tokens per document).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latesearch.compressed.arrays import chunk_digest, load_npy, save_npy, unit_rows
from latesearch.errors import IndexCorruptError
from latesearch.indexing.files import link_or_copy
from latesearch.indexing.manifest import ChunkInfo, span_chunk_files
from latesearch.modeling.token_pooling import DocumentPooling, pool_tokens

PROTECTED_TOKENS = 1  # the [CLS] vector, never pooled (PyLate's protected_tokens=1)
SPAN_DTYPE = np.uint16  # a pooled vector's position within its document


@dataclass
class PooledGroup:
    """A group's pooled vectors, documents in input order, and where each token went."""

    embeddings: torch.Tensor  # (n_pooled, dim), the storage dtype
    doclens: torch.Tensor  # (n_docs,) int32 pooled vectors per document
    spans: np.ndarray  # (n_tokens,) uint16 pooled vector (within its document) of each token
    textlens: np.ndarray  # (n_docs,) int32 original tokens per document


def pooled_count(n_tokens: int, factor: int) -> int:
    """How many vectors a document of `n_tokens` keeps at `factor`."""
    kept = min(n_tokens, PROTECTED_TOKENS)
    return kept + math.ceil((n_tokens - kept) / factor)


def cluster_tokens(vectors: np.ndarray, n_clusters: int) -> np.ndarray:
    """Ward clusters of `vectors` (m, dim): a label per row in [0, n_clusters), numbered in
    the order of each cluster's first row."""
    from scipy.cluster.hierarchy import linkage

    m = len(vectors)
    if n_clusters >= m:
        return np.arange(m)
    merges = linkage(np.asarray(vectors, dtype=np.float64), method="ward")
    parent = np.arange(2 * m - 1)
    for step, (a, b) in enumerate(merges[: m - n_clusters, :2].astype(np.int64)):
        parent[a] = parent[b] = m + step
    root = parent[:m]
    while not np.array_equal(parent[root], root):
        root = parent[root]
    _, first, inverse = np.unique(root, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def pool_document(vectors: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """One document's pooled vectors (float32: merged ones re-normalized means, lone tokens
    as they were) and, per original token, the pooled vector that absorbed it."""
    n = len(vectors)
    kept = min(n, PROTECTED_TOKENS)
    target = pooled_count(n, factor) - kept
    labels = np.concatenate([np.arange(kept), kept + cluster_tokens(vectors[kept:], target)])
    vectors = vectors.astype(np.float32)
    sums = np.zeros((kept + target, vectors.shape[1]), dtype=np.float32)
    np.add.at(sums, labels, vectors)
    pooled = unit_rows(sums)
    alone = np.bincount(labels) == 1  # a token merged with none stays exactly as it was
    pooled[labels[alone[labels]]] = vectors[alone[labels]]
    return pooled, labels


def pool_group(embeddings: torch.Tensor, doclens: torch.Tensor, factor: int,
               model_pooling: DocumentPooling | None = None) -> PooledGroup:  # fmt: skip
    """Pool every document of an encoded group (concatenated `embeddings`, `doclens`) at
    `factor`, or as the model's `doc_pooling` says where it has one."""
    lens = doclens.numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    flat = embeddings.numpy()
    vectors, spans = [], []
    for start, stop in zip(offsets[:-1], offsets[1:], strict=True):
        if model_pooling is not None:
            document = torch.from_numpy(flat[start:stop].astype(np.float32))
            tensor, labels = pool_tokens(document, model_pooling)
            vectors.append(tensor.numpy())
            spans.append(labels)
            continue
        pooled, labels = pool_document(flat[start:stop], factor)
        vectors.append(pooled)
        spans.append(labels)
    if lens.size and int(lens.max()) > np.iinfo(SPAN_DTYPE).max:
        raise ValueError(f"documents of over {np.iinfo(SPAN_DTYPE).max} tokens cannot be pooled")
    counts = np.array([len(v) for v in vectors], dtype=np.int32)
    dim = embeddings.shape[1]
    stacked = np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)
    return PooledGroup(
        embeddings=torch.from_numpy(stacked).to(embeddings.dtype),
        doclens=torch.from_numpy(counts),
        spans=(np.concatenate(spans) if spans else np.zeros(0)).astype(SPAN_DTYPE),
        textlens=lens.astype(np.int32),
    )


# ---------------------------------------------------------------------- chunk files
def save_spans(folder: Path, index: int, spans: np.ndarray, textlens: np.ndarray) -> dict:
    """Write chunk `index`'s span files; the ChunkInfo fields naming them."""
    spans_name, lens_name = span_chunk_files(index)
    spans = np.ascontiguousarray(spans, dtype=SPAN_DTYPE)
    textlens = np.ascontiguousarray(textlens, dtype=np.int32)
    save_npy(folder / spans_name, spans)
    save_npy(folder / lens_name, textlens)
    return {"spans": spans_name, "spans_sha256": chunk_digest(spans),
            "textlens": lens_name, "textlens_sha256": chunk_digest(textlens)}  # fmt: skip


def load_spans(folder: Path, chunk: ChunkInfo) -> tuple[np.ndarray, np.ndarray] | None:
    """A pooled chunk's (spans, textlens), checked against its doclens; None: not pooled."""
    if not chunk.spans:
        return None
    textlens = load_npy(folder / chunk.textlens, dtype="int32", shape=(chunk.n_docs,),
                        mmap=False)  # fmt: skip
    n_tokens = int(textlens.sum(dtype=np.int64))
    spans = load_npy(folder / chunk.spans, dtype=np.dtype(SPAN_DTYPE).name, shape=(n_tokens,),
                     mmap=False)  # fmt: skip
    return spans, textlens


def span_arrays(folder: Path, chunk: ChunkInfo) -> list[tuple[str, Any, str]]:
    """(file, array, expected digest) of a chunk's span files, for `verify`."""
    loaded = load_spans(folder, chunk)
    if loaded is None:
        return []
    return [(chunk.spans, loaded[0], chunk.spans_sha256),
            (chunk.textlens, loaded[1], chunk.textlens_sha256)]  # fmt: skip


def text_tokens(folder: Path, chunks: list[ChunkInfo]) -> int:
    """The original (text) tokens of the chunks' documents: their vectors where unpooled."""
    total = 0
    for chunk in chunks:
        loaded = load_spans(folder, chunk) if chunk.textlens else None
        total += chunk.n_embeddings if loaded is None else int(loaded[1].sum(dtype=np.int64))
    return total


def token_spans(store: Any, doc_index: int) -> list[np.ndarray]:
    """For document `doc_index` of an open IndexStore: per stored vector, the positions of
    the original tokens it stands for (one each where the index is not pooled)."""
    n_vectors = int(store.doclens[doc_index])
    for chunk in store.chunks:
        if chunk.first_doc <= doc_index < chunk.first_doc + chunk.n_docs:
            break
    else:
        raise IndexError(f"document {doc_index} is not in the index")
    loaded = load_spans(store.folder, chunk)
    if loaded is None:
        return [np.array([i]) for i in range(n_vectors)]
    spans, textlens = loaded
    local = doc_index - chunk.first_doc
    start = int(textlens[:local].sum(dtype=np.int64))
    labels = spans[start : start + int(textlens[local])].astype(np.int64)
    if labels.size and int(labels.max()) >= n_vectors:
        raise IndexCorruptError(f"{store.folder / chunk.spans}: names a vector past the document's")
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.cumsum(np.bincount(labels, minlength=n_vectors))[:-1])


def pool_chunks(store: Any, folder: Path, factor: int) -> list[ChunkInfo]:
    """Pooled copies of the chunks of an unpooled, uncompressed IndexStore written into
    `folder` under the same numbers (their dense vectors linked): the chunks a build with
    `pool_factor=factor` writes for the same vectors."""
    out, token = [], 0
    for i, chunk in enumerate(store.chunks):
        doclens = store.doclens[chunk.first_doc : chunk.first_doc + chunk.n_docs]
        vectors = torch.from_numpy(np.array(store.embeddings_flat()[i]))
        pooled = pool_group(vectors, torch.from_numpy(doclens.astype(np.int32)), factor)
        embeddings, lens = pooled.embeddings.numpy(), pooled.doclens.numpy()
        save_npy(folder / chunk.embeddings, embeddings)
        save_npy(folder / chunk.doclens, lens)
        if chunk.dense:
            link_or_copy(store.folder / chunk.dense, folder / chunk.dense)
        spans = save_spans(folder, chunk.index, pooled.spans, pooled.textlens)
        out.append(dataclasses.replace(
            chunk, first_token=token, n_embeddings=len(embeddings), sha256=chunk_digest(embeddings),
            doclens_sha256=chunk_digest(lens), **spans,
        ))  # fmt: skip
        token += len(embeddings)
    return out
