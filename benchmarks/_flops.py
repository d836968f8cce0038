"""Analytical FLOP counts (1 multiply-add = 2 FLOPs; softmax, layer norms, GELU and
embeddings left out: they are a few percent of the matmuls)."""

from __future__ import annotations

from typing import Any


def transformer_flops(length: int, layers: int, hidden: int, intermediate: int) -> int:
    """One forward pass of a BERT-style encoder over `length` tokens: per layer, the Q, K,
    V and output projections (4 L h^2), attention scores and context (2 L^2 h) and the
    feed-forward block (2 L h i) multiply-adds."""
    macs = 4 * length * hidden**2 + 2 * length**2 * hidden + 2 * length * hidden * intermediate
    return 2 * layers * macs


def backbone_shape(config: Any) -> dict[str, int]:
    """layers, hidden, intermediate of a Hugging Face BERT-family config."""
    return {
        "layers": int(config.num_hidden_layers),
        "hidden": int(config.hidden_size),
        "intermediate": int(config.intermediate_size),
    }


def colbert_query_flops(shape: dict[str, int], query_len: int, dim: int) -> int:
    """Encoding one query: the encoder over `query_len` tokens plus the projection to dim."""
    return transformer_flops(query_len, **shape) + 2 * query_len * shape["hidden"] * dim


def maxsim_flops(query_len: int, doc_tokens: int, dim: int) -> int:
    """MaxSim of one query against documents holding `doc_tokens` embeddings in all: the
    similarity matmul (the max and sum add one comparison per product)."""
    return 2 * query_len * doc_tokens * dim


def cross_encoder_flops(shape: dict[str, int], pair_lengths: list[int]) -> int:
    """A cross-encoder over each (query, document) pair of the given token lengths."""
    return sum(transformer_flops(n, **shape) for n in pair_lengths)
