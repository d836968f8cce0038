"""Brute-force dense retrieval: one vector per document (e.g. `DenseEncoder`), cosine
(inner product of unit vectors), exact top-k. The single-vector baseline of late
interaction."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from latesearch.errors import IndexCorruptError, InputError
from latesearch.indexing._store import atomic_folder, read_json, write_json
from latesearch.modeling.dense import DenseEncoder

EMBEDDINGS_FILE, DOC_IDS_FILE, META_FILE = "embeddings.npy", "doc_ids.json", "dense.json"


class DenseIndex:
    """Document ids and their (n, dim) unit vectors; `search` scores all of them."""

    def __init__(self, doc_ids: list[str], embeddings: torch.Tensor, source: str = "") -> None:
        if embeddings.ndim != 2 or embeddings.shape[0] != len(doc_ids):
            raise InputError(
                f"{len(doc_ids)} doc ids but embeddings of shape {tuple(embeddings.shape)}",
                field="embeddings",
            )
        self.doc_ids, self.embeddings, self.source = doc_ids, embeddings.float(), source

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def build(
        cls,
        docs: Iterable[tuple[str, str]],
        encoder: DenseEncoder,
        *,
        batch_size: int = 64,
        progress: bool = False,
        chunk: int = 1024,
    ) -> DenseIndex:
        """Encode `(doc_id, text)` pairs (in chunks of `chunk` texts)."""
        from tqdm.auto import tqdm

        ids, texts, parts = [], [], []
        bar = tqdm(unit="doc", disable=not progress, desc="dense encode")
        for doc_id, text in docs:
            ids.append(doc_id)
            texts.append(text)
            if len(texts) == chunk:
                parts.append(encoder.encode(texts, batch_size=batch_size))
                bar.update(len(texts))
                texts = []
        if texts:
            parts.append(encoder.encode(texts, batch_size=batch_size))
            bar.update(len(texts))
        bar.close()
        if not ids:
            raise InputError("no documents to index")
        if len(set(ids)) != len(ids):
            raise InputError("duplicate document ids", field="doc_id")
        return cls(ids, torch.cat(parts), encoder.source)

    def search_vectors(self, Q: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
        """Top-`k` (doc_id, cosine) per row of the (nq, dim) query matrix, best first."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be an integer >= 1, got {k!r}", field="k")
        scores = Q.float() @ self.embeddings.T
        top = torch.topk(scores, min(k, len(self)), dim=1)
        return [
            [(self.doc_ids[j], float(s)) for s, j in zip(vals, idx, strict=True)]
            for vals, idx in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]

    def search(
        self, queries: Sequence[str], encoder: DenseEncoder, k: int
    ) -> list[list[tuple[str, float]]]:
        """Encode `queries` with `encoder` (the documents' own) and search."""
        if isinstance(queries, str):
            raise InputError("queries must be a list of strings", field="queries")
        return self.search_vectors(encoder.encode(list(queries)), k)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ids, float32 vectors and metadata into `folder` atomically."""
        with atomic_folder(folder, marker=META_FILE) as tmp:
            np.save(tmp / EMBEDDINGS_FILE, self.embeddings.numpy())
            write_json(tmp / DOC_IDS_FILE, self.doc_ids)
            write_json(tmp / META_FILE, {"source": self.source, "dim": self.embeddings.shape[1]})
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> DenseIndex:
        folder = Path(folder)
        meta, ids = read_json(folder / META_FILE), read_json(folder / DOC_IDS_FILE)
        try:
            vectors = np.load(folder / EMBEDDINGS_FILE)
        except (OSError, ValueError) as err:
            raise IndexCorruptError(f"{folder / EMBEDDINGS_FILE}: cannot read ({err})") from None
        if vectors.ndim != 2 or vectors.shape[0] != len(ids):
            raise IndexCorruptError(f"{folder}: {len(ids)} ids but vectors {vectors.shape}")
        return cls(list(ids), torch.from_numpy(vectors), str(meta.get("source", "")))
