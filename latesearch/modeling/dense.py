"""The dense bi-encoder model (`DenseEncoder`): one mean-pooled, L2-normalized vector per
text, computed the way sentence-transformers does for all-MiniLM-L6-v2 (attention-masked
mean of the last hidden states, texts truncated at the model's `max_seq_length`, cosine
similarity). An index's dense view stores such vectors (`indexing.dense_vectors`) and
searches them (`search.dense_view`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from latesearch.errors import CheckpointError
from latesearch.modeling.colbert import mean_pool, resolve_device, resolve_dtype
from latesearch.modeling.default import backbone_path

DEFAULT_MAX_LENGTH = 512


class DenseEncoder:
    """Mean-pooled sentence embeddings from a Hugging Face encoder (default: the embedded
    all-MiniLM-L6-v2). `encode` returns (n, hidden) float32 CPU tensors, L2-normalized."""

    def __init__(self, backbone, tokenizer, max_length: int, *, source: str = "") -> None:
        self.backbone, self.tokenizer, self.max_length = backbone.eval(), tokenizer, max_length
        self.source = source

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike | None = None,
        *,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ) -> DenseEncoder:
        """Load a plain HF / sentence-transformers folder (None: the default backbone). The
        length limit is `max_length`, else sentence_bert_config.json's `max_seq_length`, else
        512 (capped by the model's positions)."""
        from transformers import AutoModel, AutoTokenizer

        folder = backbone_path() if path is None else Path(path)
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"{folder}: not a Hugging Face model folder (no config.json)")
        backbone = AutoModel.from_pretrained(str(folder))
        backbone.to(device=resolve_device(device), dtype=resolve_dtype(dtype))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        if max_length is None:
            st_config = folder / "sentence_bert_config.json"
            if st_config.is_file():
                max_length = json.loads(st_config.read_text()).get("max_seq_length")
        positions = getattr(backbone.config, "max_position_embeddings", DEFAULT_MAX_LENGTH)
        length = min(int(max_length or DEFAULT_MAX_LENGTH), positions)
        return cls(backbone, tokenizer, length, source=str(folder))

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def dim(self) -> int:
        return int(self.backbone.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> torch.Tensor:
        """(len(texts), dim) unit vectors; texts are batched by length (order kept)."""
        texts = list(texts)
        out = torch.zeros(len(texts), self.dim)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.backbone(**batch).last_hidden_state
            out[rows] = mean_pool(hidden, batch["attention_mask"]).float().cpu()
        return out
