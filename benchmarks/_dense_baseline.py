"""The dense (single-vector) baseline of Table 2: one `DenseEncoder` vector per document,
exact top-k by cosine over all of them, cached as a folder (vectors.npy, doc_ids.json)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

VECTORS_FILE, DOC_IDS_FILE = "vectors.npy", "doc_ids.json"


class DenseBaseline:
    """Document ids and their (n, dim) unit vectors; `search` scores all of them."""

    def __init__(self, doc_ids: list[str], vectors: torch.Tensor) -> None:
        if vectors.ndim != 2 or len(vectors) != len(doc_ids) or not doc_ids:
            raise ValueError(f"{len(doc_ids)} doc ids but vectors of shape {tuple(vectors.shape)}")
        self.doc_ids, self.vectors = doc_ids, vectors.float()

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def build(cls, docs: Iterable[tuple[str, str]], encoder: Any, *, batch_size: int = 64,
              progress: bool = False, chunk: int = 1024) -> DenseBaseline:  # fmt: skip
        """Encode `(doc_id, text)` pairs, `chunk` texts at a time."""
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
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate document ids")
        return cls(ids, torch.cat(parts) if parts else torch.zeros(0, 0))

    def search(self, queries: Sequence[str], encoder: Any, k: int) -> list[list[tuple[str, float]]]:
        """Top-`k` (doc_id, cosine) per query, best first (`encoder`: the documents' own)."""
        scores = encoder.encode(list(queries)).float() @ self.vectors.T
        top = torch.topk(scores, min(k, len(self)), dim=1)
        return [
            [(self.doc_ids[j], float(s)) for s, j in zip(vals, idx, strict=True)]
            for vals, idx in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / VECTORS_FILE, self.vectors.numpy())
        (folder / DOC_IDS_FILE).write_text(json.dumps(self.doc_ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> DenseBaseline:
        ids = json.loads((folder / DOC_IDS_FILE).read_text(encoding="utf-8"))
        return cls(ids, torch.from_numpy(np.load(folder / VECTORS_FILE)))
