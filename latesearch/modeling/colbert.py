"""The ColBERT encoder: a transformer backbone, a projection head, L2 normalization."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latesearch.errors import ConfigError
from latesearch.modeling.backbones import resolve_folder, usable_positions
from latesearch.modeling.checkpoints import read_checkpoint
from latesearch.modeling.config import ColBERTConfig
from latesearch.modeling.default import base_model_path, default_model_path
from latesearch.modeling.delta import is_delta, read_delta, read_manifest
from latesearch.modeling.head import ProjectionHead, head_layers
from latesearch.modeling.saving import push_to_hub, write_checkpoint
from latesearch.modeling.token_pooling import pool_tokens
from latesearch.modeling.tokenization import ColBERTTokenizer, TokenBatch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
PROJECTION_SEED = 12345


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """'float32' / 'float16' / 'bfloat16' (or the torch dtype itself); None means float32."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None picks CUDA when present, else CPU; an unavailable CUDA device is an error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return resolved


def new_projection(hidden: int, dim: int, seed: int = PROJECTION_SEED) -> torch.Tensor:
    """A seeded random (semi-)orthogonal [dim, hidden] projection, identical whatever the
    thread count: QR runs in float64 (multithreaded LAPACK may change the last bits) and
    the result is rounded to float32."""
    gaussian = torch.randn(max(dim, hidden), min(dim, hidden), dtype=torch.float64,
                           generator=torch.Generator().manual_seed(seed))
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    weight = q if dim >= hidden else q.T
    return weight.to(torch.float32).contiguous()


class ColBERT(nn.Module):
    """ColBERT encoder (Khattab & Zaharia 2020): contextualized token embeddings for late
    interaction. Holds its own device and dtype; nothing global."""

    def __init__(
        self,
        backbone: nn.Module,
        hf_tokenizer: Any,
        config: ColBERTConfig,
        head_state: dict[str, torch.Tensor] | torch.Tensor | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        weights_from: str | None = None,
    ) -> None:
        """`head_state`: the projection head's weights (named as in `head.state_dict()`),
        or just the [dim, hidden] weight of the paper's single layer; None draws a seeded
        random projection (the paper's head only). `weights_from` names the checkpoint in
        the error a misshapen head gets."""
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.tokenizer = ColBERTTokenizer(hf_tokenizer, config)
        hidden = backbone.config.hidden_size
        max_positions = usable_positions(backbone.config)
        for field in ("query_maxlen", "doc_maxlen"):
            if max_positions and getattr(config, field) > max_positions:
                raise ConfigError(
                    f"ColBERTConfig.{field}={getattr(config, field)} exceeds the "
                    f"{max_positions} tokens the backbone takes (max_position_embeddings="
                    f"{backbone.config.max_position_embeddings})"
                )
        self.head = ProjectionHead(head_layers(config, hidden))
        if head_state is None:
            if not config.simple_head:
                raise ConfigError("a head of several layers needs its weights")
            head_state = new_projection(hidden, config.dim)
        if isinstance(head_state, torch.Tensor):
            head_state = {"linear.weight": head_state}
        self.head.load(head_state, f"{weights_from}: projection" if weights_from else "head")
        self.to(device=resolve_device(device), dtype=resolve_dtype(dtype))
        self.eval()

    @property
    def linear(self) -> nn.Linear:
        """The head's first (for the paper's head, only) linear layer."""
        return self.head.linear

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        backend: str = "torch",
        onnx_precision: str = "fp32",
        onnx_threads: int | None = None,
        **config_overrides: Any,
    ) -> ColBERT:
        """Load a checkpoint: ours, colbert-ai (colbertv2.0), PyLate / sentence-transformers,
        BGE-M3, Hofstätter's ColBERT, or a plain backbone (new seeded projection), encoding
        as its own library does. No argument: the embedded default model, offline.
        `trust_remote_code`: allow a checkpoint that ships its own model code (Jina).
        `backend="onnx"`: encode with ONNX Runtime on CPU (`onnx_precision` "fp32" or
        "int8", `onnx_threads` intra-op threads; needs latesearch[onnx]; see onnx.py)."""
        from latesearch.modeling import onnx

        onnx.check_backend(backend, onnx_precision, onnx_threads)
        folder = default_model_path() if name_or_path is None else resolve_folder(name_or_path)
        if is_delta(folder):
            base = read_manifest(folder)["base"].get("name", "")
            base_folder = base_model_path(base) or resolve_folder(base)
            parts = read_delta(folder, base_folder, **config_overrides)
        else:
            parts = read_checkpoint(
                folder, trust_remote_code=trust_remote_code, **config_overrides
            )
        model = cls(
            parts.backbone,
            parts.tokenizer,
            parts.config,
            parts.head_state,
            device=device,
            dtype=dtype,
            weights_from=str(folder),
        )
        model.source = str(folder)
        model.layout = parts.layout
        model.backend, model.onnx_precision = backend, onnx_precision
        if backend == "onnx":
            onnx.attach_onnx(model, onnx_precision, threads=onnx_threads)
        return model

    def save_pretrained(self, folder: str | os.PathLike, *, base_model: str | None = None) -> Path:
        """Write a checkpoint latesearch, colbert-ai and PyLate read alike (see saving.py),
        with a model card (README.md; `base_model` names the backbone on the hub)."""
        return write_checkpoint(
            folder,
            config=self.config,
            backbone=self.backbone,
            tokenizer=self.tokenizer.hf,
            head=self.head,
            base_model=base_model,
        )

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | None = None,
        base_model: str | None = None,
        commit_message: str = "Upload latesearch ColBERT model",
        api: Any = None,
    ) -> str:
        """Save as `save_pretrained` does and upload to the Hugging Face hub (online;
        `api`: a `huggingface_hub.HfApi`, default a new one with `token`)."""
        return push_to_hub(
            lambda folder: self.save_pretrained(folder, base_model=base_model),
            repo_id,
            private=private,
            token=token,
            commit_message=commit_message,
            api=api,
        )

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self.linear.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.linear.weight.dtype

    def fingerprint(self) -> str:
        """SHA-256 over config and weights: names the exact model an index was built with."""
        digest = hashlib.sha256(repr(sorted(fingerprint_config(self.config).items())).encode())
        for name, tensor in sorted(self.state_dict().items()):
            name = name.removeprefix("head.")  # names before the head had its own module
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------ forward passes
    def token_states(self, batch: TokenBatch) -> torch.Tensor:
        """(n, L, hidden) output states of the backbone for a token batch, before the head."""
        batch = batch.to(self.device)
        return self.backbone(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state

    def embed_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(n, L, dim) embeddings of every position (the backbone, then the head); no
        output mask applied. The graph an exported encoder (ONNX) reproduces."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.project(hidden)

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """The head over (n, L, hidden) states, then L2 normalization (unless the config's
        `normalize` is False)."""
        projected = self.head(hidden)
        return F.normalize(projected, p=2, dim=-1) if self.config.normalize else projected

    def _onnx(self) -> Any:
        """The ONNX Runtime encoder when attached and no gradients are wanted, else None."""
        encoder = getattr(self, "onnx_encoder", None)
        return None if torch.is_grad_enabled() else encoder

    def _embed(self, batch: TokenBatch) -> torch.Tensor:
        if (onnx := self._onnx()) is not None:
            return onnx.embed(batch, self.device, self.dtype)
        batch = batch.to(self.device)
        return self._head(self.token_states(batch), batch)

    def _head(self, hidden: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
        """The projection of (n, L, hidden) states: unit vectors, unscored positions zero."""
        embeddings = self.project(hidden)
        return embeddings * batch.output_mask.unsqueeze(-1).to(embeddings.dtype)

    def embed_and_pool(self, batch: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: the (n, L, dim) normalized embeddings (unscored positions zero)
        and the (n, hidden) unit mean of the attended last hidden states (a pooled dense
        vector per text, before the head)."""
        if (onnx := self._onnx()) is not None:
            return onnx.embed_and_pool(batch, self.device, self.dtype)
        batch = batch.to(self.device)
        hidden = self.token_states(batch)
        return self._head(hidden, batch), mean_pool(hidden, batch.attention_mask)

    @torch.inference_mode()
    def encode_queries_and_pooled(
        self, queries: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass over the queries: their (n, L, dim) embeddings (on the model's device),
        the (n, L) mask of scored positions, and their (n, hidden) float32 CPU pooled
        vectors (the query side of a "pooled" dense view)."""
        batch = self.tokenizer.queries(list(queries)).to(self.device)
        embeddings, pooled = self.embed_and_pool(batch)
        return embeddings, batch.output_mask.to(torch.bool), pooled.float().cpu()

    @torch.inference_mode()
    def encode_pooled_queries(self, queries: Sequence[str]) -> torch.Tensor:
        """(n, hidden) float32 CPU pooled dense vectors of queries, tokenized as for MaxSim
        (the query side of an index's "pooled" dense view)."""
        if not queries:
            return torch.zeros((0, self.backbone.config.hidden_size))
        return self.encode_queries_and_pooled(queries)[2]

    def forward_queries(self, batch: TokenBatch) -> torch.Tensor:
        """(n, L, dim) normalized query embeddings; unscored positions are zero."""
        return self._embed(batch)

    def forward_documents(
        self, batch: TokenBatch, *, chunk_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, L, dim) normalized document embeddings and the (n, L) mask of kept tokens.

        `chunk_size`: run the encoder on length-sorted chunks of at most that many
        documents, each cut to its own longest one. The embeddings are the same up to float
        rounding (dropout draws differ); the padding and the attention matrices shrink,
        which makes a CPU training step about twice as fast."""
        mask = batch.output_mask.to(self.device)
        if chunk_size is None:
            return self._embed(batch), mask
        return self._embed_sorted(batch, chunk_size), mask

    def _embed_sorted(self, batch: TokenBatch, chunk_size: int) -> torch.Tensor:
        """`_embed(batch)` computed over length-sorted chunks of at most `chunk_size` rows,
        each cut to its own longest row (queries padded with scored [MASK] keep the full
        width); rows in the batch's order, at its width."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
        if len(batch) <= chunk_size:
            return self._embed(batch)
        # a row's extent: its attended or scored positions (unattended [MASK] are scored)
        lengths = (batch.attention_mask.bool() | batch.output_mask.bool()).sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        width = batch.input_ids.shape[1]
        parts = []
        for start in range(0, len(batch), chunk_size):
            rows = order[start : start + chunk_size]
            end = int(lengths[rows].max())
            part = self._embed(TokenBatch(*(t[rows, :end] for t in batch.astuple())))
            parts.append(F.pad(part, (0, 0, 0, width - end)))
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return torch.cat(parts)[inverse.to(self.device)]

    # ------------------------------------------------------------------ batched encoding
    @torch.inference_mode()
    def encode_queries(
        self,
        queries: Sequence[str],
        *,
        batch_size: int = 128,
        to_cpu: bool = True,
        return_mask: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Encode queries to a (n, query_maxlen, dim) tensor (narrower without augmentation,
        padded with zero rows); with `return_mask`, also the (n, width) bool mask of the
        positions that are scored. No queries give a tensor of 0 rows."""
        if not isinstance(queries, str) and len(queries) == 0:
            width = self.config.query_maxlen if self.config.query_augmentation else 0
            device = "cpu" if to_cpu else self.device
            out = torch.zeros((0, width, self.config.dim), dtype=self.dtype, device=device)
            mask = torch.zeros((0, width), dtype=torch.bool, device=device)
            return (out, mask) if return_mask else out
        batch = self.tokenizer.queries(queries)
        out = self._embed_sorted(batch, batch_size)
        out = out.cpu() if to_cpu else out
        if not return_mask:
            return out
        return out, batch.output_mask.to(device=out.device, dtype=torch.bool)

    @torch.inference_mode()
    def encode_documents(
        self, documents: Sequence[str], *, batch_size: int = 64, to_cpu: bool = True
    ) -> list[torch.Tensor]:
        """Encode documents to a list of (n_tokens_i, dim) tensors, punctuation and padding
        removed (and tokens pooled, where the config's `doc_pooling` says so). Texts are
        sorted by length and padded per batch."""
        id_lists = self.tokenizer.document_ids(documents)
        order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]), reverse=True)
        result: list[torch.Tensor | None] = [None] * len(id_lists)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            embedded, mask = self.forward_documents(
                self.tokenizer.pad_documents([id_lists[i] for i in rows])
            )
            if to_cpu:
                embedded, mask = embedded.cpu(), mask.cpu()
            for j, i in enumerate(rows):
                result[i] = embedded[j][mask[j]]
                if self.config.doc_pooling is not None:
                    result[i] = pool_tokens(result[i], self.config.doc_pooling)[0]
        return result  # type: ignore[return-value]


def fingerprint_config(config: ColBERTConfig) -> dict[str, Any]:
    """The config's fields for a fingerprint: fields added after the first release count
    only when they differ from their defaults, so existing indexes keep their fingerprint."""
    data = config.to_dict()
    defaults = ColBERTConfig().to_dict()
    return {k: v for k, v in data.items() if k not in LATER_FIELDS or v != defaults.get(k)}


LATER_FIELDS = (
    "strip_text", "lowercase", "query_mask_tokens", "skiplist", "skiplist_lookup",
    "drop_cls", "normalize", "head", "doc_pooling",
)  # fmt: skip


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Attention-masked mean of (n, L, h) token states, L2-normalized: (n, h)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=-1)
